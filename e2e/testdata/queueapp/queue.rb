# A job queue kept in the postgres add-on's database (DATABASE_URL): a table that web
# dynos insert into and worker dynos take jobs from with SELECT ... FOR UPDATE SKIP
# LOCKED, so that each job is done once even with several workers.
require "pg"

module JobQueue
  module_function

  def connect
    db = PG.connect(ENV.fetch("DATABASE_URL"))
    db.exec("SET client_min_messages TO warning")
    # Dynos start at once: two of them creating the table together is retried.
    3.times do
      db.exec(<<~SQL)
        CREATE TABLE IF NOT EXISTS jobs (
          id        bigserial PRIMARY KEY,
          payload   text NOT NULL,
          done_by   text,
          attempts  int NOT NULL DEFAULT 0,
          done_at   timestamptz
        )
      SQL
      break
    rescue PG::UniqueViolation, PG::DuplicateTable
      sleep 0.1
    end
    db
  end

  # enqueue adds n jobs and returns their ids.
  def enqueue(db, n, from)
    db.exec_params("INSERT INTO jobs (payload) SELECT $1 || '-' || g FROM generate_series(1, $2::int) g RETURNING id",
                   [from, n]).map { |r| r["id"].to_i }
  end

  # take does one pending job as dyno, in a transaction that holds its row; nil when
  # none is pending (or all are held by other workers).
  def take(db, dyno)
    db.transaction do |tx|
      row = tx.exec("SELECT id, payload FROM jobs WHERE done_by IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED").first
      next nil unless row # `next` ends the block: the transaction commits

      yield row["payload"]
      tx.exec_params("UPDATE jobs SET done_by = $1, attempts = attempts + 1, done_at = now() WHERE id = $2", [dyno, row["id"]])
      row
    end
  end

  def stats(db)
    r = db.exec(<<~SQL).first
      SELECT count(*) AS total, count(done_by) AS done, coalesce(max(attempts), 0) AS max_attempts,
             coalesce(string_agg(DISTINCT done_by, ',' ORDER BY done_by), '') AS workers
      FROM jobs
    SQL
    "total=#{r["total"]} done=#{r["done"]} max_attempts=#{r["max_attempts"]} workers=#{r["workers"]}\n"
  end
end
