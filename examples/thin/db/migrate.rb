# The example app's release phase (process "release" in dyno.hcl): `dyno deploy` runs it
# once per release, in a one-off dyno with the release's code and config, before any of
# the release's dynos starts. It creates the table of the visit counter, which the app
# only reads and writes. A non-zero exit fails the release.
$stdout.sync = true

unless ENV["DATABASE_URL"]
  puts "migrate: no DATABASE_URL (dyno addons:create postgres), nothing to migrate"
  exit 0
end

require "pg"

db = PG.connect(ENV["DATABASE_URL"])
db.exec("CREATE TABLE IF NOT EXISTS visits (id int PRIMARY KEY, n bigint NOT NULL)")
puts "migrate: table visits is ready (#{db.exec("SELECT count(*) FROM visits")[0]["count"]} rows)"
