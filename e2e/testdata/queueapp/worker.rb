# The worker side of the queue test app: takes jobs one at a time; each takes 0.2 s.
require_relative "queue"

$stdout.sync = true
dyno = ENV.fetch("DYNO")
db = JobQueue.connect
puts "#{dyno} ready for jobs"
stop = false
trap("TERM") { stop = true }
until stop
  done = JobQueue.take(db, dyno) do |payload|
    sleep 0.2
    puts "#{dyno} did #{payload}"
  end
  sleep 0.2 unless done
end
puts "#{dyno} stopped"
