# The Dynogrid example app: a Rack app served by Thin, one request at a time.
#
#   /            the dyno's name, pid and how many requests this process has served; with
#                the postgres add-on a visit counter kept in the database, with the
#                memcached add-on a page fragment cached for 10 seconds
#   /sleep?ms=N  answers after N milliseconds (for routing tests)
#   /tmp         writes a file to ./tmp and reads it back
#   /health      the health check the deployer registers in Consul
require "rack"
require "socket"
require_relative "lib/cache"

# Dynos log to stdout; unbuffered, so `dyno logs` shows lines as they happen.
$stdout.sync = true
$stderr.sync = true

class DynoApp
  MAX_SLEEP_MS = 120_000

  def initialize
    @served = 0
  end

  def call(env)
    @served += 1
    req = Rack::Request.new(env)
    case req.path_info
    when "/" then index
    when "/sleep" then sleep_for(req.params["ms"])
    when "/tmp" then write_tmp
    when "/health" then text(200, "ok\n")
    else text(404, "not found: #{req.path_info}\n")
    end
  end

  private

  def index
    text(200, <<~BODY)
      Hello from #{ENV.fetch("DYNO", "an unnamed dyno")}
      pid:      #{Process.pid}
      host:     #{Socket.gethostname}
      served:   #{@served}
      visits:   #{visits}
      fragment: #{fragment}
    BODY
  end

  # The app's visit counter, kept in the postgres add-on's database, in the table the
  # release phase creates (db/migrate.rb).
  def visits
    return "no database (dyno addons:create postgres)" unless ENV["DATABASE_URL"]

    require "pg"
    @db ||= PG.connect(ENV["DATABASE_URL"])
    @db.exec("INSERT INTO visits VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = visits.n + 1 RETURNING n")[0]["n"]
  rescue PG::Error => e
    @db = nil
    "database error: #{e.message.lines.first.strip}"
  end

  # A fragment rendered at most every 10 seconds, cached in the memcached add-on.
  def fragment
    return "no cache (dyno addons:create memcached)" unless ENV["MEMCACHED_SERVERS"]

    @cache ||= Cache.new
    cached = @cache.get("fragment")
    return "#{cached} (from memcached)" if cached

    rendered = "rendered by #{ENV.fetch("DYNO", "?")} at #{Time.now.utc.strftime("%H:%M:%S")}"
    @cache.set("fragment", rendered, 10)
    "#{rendered} (fresh)"
  rescue StandardError => e
    @cache = nil
    "cache error: #{e.message}"
  end

  def sleep_for(raw)
    ms = Integer(raw || "0", 10)
    return text(400, "ms must be between 0 and #{MAX_SLEEP_MS}\n") unless ms.between?(0, MAX_SLEEP_MS)
    sleep(ms / 1000.0)
    text(200, "slept #{ms}ms on #{ENV.fetch("DYNO", "?")}\n")
  rescue ArgumentError
    text(400, "ms must be a whole number of milliseconds\n")
  end

  def write_tmp
    path = File.join("tmp", "visit-#{Process.pid}.txt")
    File.write(path, "request #{@served} at #{Time.now.utc}\n", mode: "a")
    text(200, "wrote #{path}:\n#{File.read(path)}")
  rescue SystemCallError => e
    text(500, "cannot write #{path}: #{e.message}\n")
  end

  def text(status, body)
    [status, { "content-type" => "text/plain; charset=utf-8" }, [body]]
  end
end

# Logs every request but the platform's health checks.
class QuietHealthLogger < Rack::CommonLogger
  def call(env)
    return @app.call(env) if env["PATH_INFO"] == "/health"

    super
  end
end

use QuietHealthLogger, $stdout
run DynoApp.new
