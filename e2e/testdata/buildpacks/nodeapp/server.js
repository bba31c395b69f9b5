// Answers with a value computed by the ms package, which the build installed with npm ci.
const http = require("http");
const ms = require("ms");

const mark = require("fs").readFileSync(__dirname + "/mark", "utf8").trim();
http
  .createServer((req, res) => {
    res.end(`node ${process.version} ms("2 days")=${ms("2 days")} mark=${mark}\n`);
  })
  .listen(process.env.PORT, "0.0.0.0");
