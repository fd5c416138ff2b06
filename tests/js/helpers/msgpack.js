'use strict';
// A minimal msgpack encoder for hand-made trace payloads (maps, arrays, strings, integers,
// doubles): enough for /v0.4/traces, which the trace agent reads as msgpack.
function encode(value) {
  const parts = [];
  const push = (...bytes) => parts.push(Buffer.from(bytes));
  const write = (v) => {
    if (typeof v === 'string') {
      const b = Buffer.from(v, 'utf8');
      if (b.length < 32) push(0xa0 | b.length);
      else if (b.length < 256) push(0xd9, b.length);
      else push(0xda, b.length >> 8, b.length & 0xff);
      parts.push(b);
    } else if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v) && v >= 0)) {
      const b = Buffer.alloc(9);
      b[0] = 0xcf;
      b.writeBigUInt64BE(BigInt(v), 1);
      parts.push(b);
    } else if (typeof v === 'number' && Number.isInteger(v)) {
      const b = Buffer.alloc(9);
      b[0] = 0xd3;
      b.writeBigInt64BE(BigInt(v), 1);
      parts.push(b);
    } else if (typeof v === 'number') {
      const b = Buffer.alloc(9);
      b[0] = 0xcb;
      b.writeDoubleBE(v, 1);
      parts.push(b);
    } else if (Array.isArray(v)) {
      if (v.length < 16) push(0x90 | v.length);
      else push(0xdc, v.length >> 8, v.length & 0xff);
      v.forEach(write);
    } else if (v && typeof v === 'object') {
      const entries = Object.entries(v);
      if (entries.length < 16) push(0x80 | entries.length);
      else push(0xde, entries.length >> 8, entries.length & 0xff);
      for (const [k, val] of entries) {
        write(k);
        write(val);
      }
    } else {
      throw new TypeError(`cannot encode ${typeof v}`);
    }
  };
  write(value);
  return Buffer.concat(parts);
}

module.exports = { encode };
