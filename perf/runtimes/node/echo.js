// Node.js TCP echo server (the `net` module), the counterpart of
// perf/runtimes/asio/echo_server.cpp: every chunk that arrives is written back.
//
//   node echo.js --port P
'use strict';
const net = require('net');

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? Number(argv[i + 1]) : dflt;
};
const port = arg('--port', 7000);

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => socket.destroy());
});
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  process.stderr.write(`node echo server on 127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
