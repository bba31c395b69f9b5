app "shop" {
  process "web" {
    command = "thin start -p $PORT"
  }

  schedule "nightly" {
    cron    = "0 3 * * *"
    command = "rake cleanup"
  }

  schedule "every_ten" {
    cron    = "*/10  *  * * 1-5"
    command = "ruby report.rb"
    memory  = 256
  }

  schedule "weekly" {
    cron    = "@weekly"
    command = "rake digest"
  }
}
