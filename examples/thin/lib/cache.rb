require "socket"

# A minimal memcached client (ASCII protocol) for the memcached add-on: it reads
# MEMCACHED_SERVERS and, when set, authenticates with MEMCACHED_USERNAME and
# MEMCACHED_PASSWORD by storing the credentials as the first command.
class Cache
  def initialize(servers = ENV.fetch("MEMCACHED_SERVERS"))
    host, port = servers.split(",").first.split(":")
    @sock = Socket.tcp(host, Integer(port), connect_timeout: 2)
    return unless ENV["MEMCACHED_USERNAME"]

    token = "#{ENV["MEMCACHED_USERNAME"]} #{ENV["MEMCACHED_PASSWORD"]}"
    @sock.write("set auth 0 0 #{token.bytesize}\r\n#{token}\r\n")
    raise "memcached refused the credentials" unless @sock.gets == "STORED\r\n"
  end

  def set(key, value, ttl = 0)
    @sock.write("set #{key} 0 #{ttl} #{value.bytesize}\r\n#{value}\r\n")
    @sock.gets == "STORED\r\n"
  end

  def get(key)
    @sock.write("get #{key}\r\n")
    line = @sock.gets
    return nil if line.nil? || line == "END\r\n"

    value = @sock.read(Integer(line.split[3]) + 2)[0..-3]
    @sock.gets # END
    value
  end
end
