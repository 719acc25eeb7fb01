// server.js is the "Node.js cluster" row of BENCHMARKS.md: the platform of
// the router Subordinate grew from. The primary forks N workers with the
// cluster module (default scheduling: on Linux the primary accepts and hands
// connections to workers round-robin); each worker serves echo after the
// same line preamble as Subordinate.
//
//   node server.js --addr 127.0.0.1:7002 --workers 2 [--maxkey 1024]
//
// A connection first sends its key terminated by '\n' (a '\r' before the
// '\n' is dropped); every byte after that, including bytes that arrived in
// the same chunk as the key, is echoed back unchanged, with backpressure
// (the socket is paused while its write buffer drains). A key longer than
// --maxkey gets "-ERR key too long\n" and the connection is closed.
'use strict';

const cluster = require('node:cluster');
const net = require('node:net');

function parseArgs(argv) {
  const opts = { addr: '127.0.0.1:7002', workers: 2, maxkey: 1024 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--?/, '');
    if (!(name in opts) || i + 1 >= argv.length) {
      console.error(`server.js: unknown or incomplete flag ${argv[i]}`);
      process.exit(2);
    }
    opts[name] = name === 'addr' ? argv[++i] : Number(argv[++i]);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const sep = opts.addr.lastIndexOf(':');
const host = opts.addr.slice(0, sep);
const port = Number(opts.addr.slice(sep + 1));

if (cluster.isPrimary) {
  for (let i = 0; i < opts.workers; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', () => {
    if (++listening === opts.workers) {
      console.error(`server.js: ${opts.workers} workers listening on ${opts.addr}`);
    }
  });
  cluster.on('exit', (w, code, signal) => {
    console.error(`server.js: worker ${w.process.pid} exited (${signal || code})`);
  });
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let started = false;
    let pending = null; // bytes of an incomplete preamble
    socket.on('error', () => socket.destroy());
    const echo = (chunk) => {
      if (chunk.length > 0 && !socket.write(chunk)) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    };
    socket.on('data', (chunk) => {
      if (started) {
        echo(chunk);
        return;
      }
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > opts.maxkey) {
          socket.end('-ERR key too long\n');
          return;
        }
        pending = buf;
        return;
      }
      let keyLen = nl;
      if (keyLen > 0 && buf[keyLen - 1] === 13) keyLen--;
      if (keyLen > opts.maxkey) {
        socket.end('-ERR key too long\n');
        return;
      }
      started = true;
      pending = null;
      echo(buf.subarray(nl + 1));
    });
  });
  server.listen({ host, port, backlog: 4096 });
}
