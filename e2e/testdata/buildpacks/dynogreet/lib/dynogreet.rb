require "dynogreet/dynogreet"
