Gem::Specification.new do |s|
  s.name = "dynogreet"
  s.version = "1.0.0"
  s.summary = "A gem with a native extension, for the build tests"
  s.authors = ["Dynogrid"]
  s.license = "MPL-2.0"
  s.files = ["lib/dynogreet.rb", "ext/dynogreet/extconf.rb", "ext/dynogreet/dynogreet.c"]
  s.extensions = ["ext/dynogreet/extconf.rb"]
end
