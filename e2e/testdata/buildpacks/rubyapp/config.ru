# Answers with what the dynogreet gem's native extension returns: the gem came from
# vendor/cache and was compiled by the build against the stack's ruby.
require "dynogreet"

mark = File.read(File.join(__dir__, "mark")).strip
run lambda { |_env|
  [200, { "content-type" => "text/plain" }, ["#{Dynogreet.hello} on ruby #{RUBY_VERSION} mark=#{mark}\n"]]
}
