require "mkmf"
create_makefile("dynogreet/dynogreet")
