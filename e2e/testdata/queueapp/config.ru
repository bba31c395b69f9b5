# The web side of a queue test app: /enqueue?n=N adds N jobs to the queue, /stats says
# how many are done and by which worker dynos, /health is the health check.
require "rack"
require_relative "queue"

$stdout.sync = true

class QueueWeb
  MAX_JOBS = 1000

  def call(env)
    req = Rack::Request.new(env)
    case req.path_info
    when "/enqueue" then enqueue(req.params["n"])
    when "/stats" then text(200, JobQueue.stats(db))
    when "/health" then text(200, "ok\n")
    else text(404, "not found\n")
    end
  end

  private

  def db
    @db ||= JobQueue.connect
  end

  def enqueue(n)
    n = Integer(n || "1", 10)
    return text(400, "n must be from 1 to #{MAX_JOBS}\n") unless n.between?(1, MAX_JOBS)

    ids = JobQueue.enqueue(db, n, ENV.fetch("DYNO"))
    puts "#{ENV["DYNO"]} enqueued #{n} jobs (#{ids.first}..#{ids.last})"
    text(200, "enqueued #{n}\n")
  rescue ArgumentError
    text(400, "n must be a whole number\n")
  end

  def text(status, body)
    [status, { "content-type" => "text/plain" }, [body]]
  end
end

run QueueWeb.new
