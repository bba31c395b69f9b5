app "shop" {
  process "web" {
    command = "thin start -p $PORT"
  }

  schedule "four_fields" {
    cron    = "0 3 * *"
    command = "rake cleanup"
  }

  schedule "seconds" {
    cron    = "*/5 * * * * *"
    command = "rake fast"
  }

  schedule "bad_field" {
    cron    = "0 25 * * *"
    command = "rake late"
  }

  schedule "never" {
    cron    = "0 0 30 2 *"
    command = "rake never"
  }

  schedule "Nightly" {
    cron    = "@daily"
    command = "rake x"
  }

  schedule "no_cron" {
    command = "rake x"
  }

  schedule "no_command" {
    cron = "@hourly"
  }

  schedule "empty" {
    cron    = "@hourly"
    command = "  "
  }

  schedule "memory" {
    cron    = "@hourly"
    command = "rake x"
    memory  = 1
  }

  schedule "no_command" {
    cron    = "@hourly"
    command = "rake y"
  }
}
