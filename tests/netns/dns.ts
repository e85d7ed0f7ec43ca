/**
 * A tiny authoritative DNS server for the netns suite (UDP, A and AAAA only), so names
 * can resolve to loopback, to several addresses, or differently on each query (DNS
 * rebinding). Inside the suite's namespace /etc/resolv.conf points at it; every name
 * it does not know is NXDOMAIN at once, so nothing waits on a timeout. TTL 0: resolvers
 * must ask again every time, as a rebinding attacker's server would make them.
 */
import dgram from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";

/** Per name: the answers to successive queries of each type; the last one repeats. */
export type Zone = Record<string, { A?: string[][]; AAAA?: string[][] }>;

export interface DnsServer {
  /** Queries seen, as "name TYPE", in order. */
  queries: string[];
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;

export async function startDnsServer(zone: Zone, host = "127.0.0.1", port = 53): Promise<DnsServer> {
  const served = new Map<string, number>();
  const queries: string[] = [];
  const socket = dgram.createSocket("udp4");
  socket.on("message", (query, peer) => {
    const answer = respond(query);
    if (answer) socket.send(answer, peer.port, peer.address);
  });

  function respond(query: Buffer): Buffer | null {
    if (query.length < 17) return null;
    let offset = 12;
    const labels: string[] = [];
    while (offset < query.length && query[offset] !== 0) {
      const length = query[offset];
      labels.push(query.subarray(offset + 1, offset + 1 + length).toString("ascii"));
      offset += length + 1;
    }
    const questionEnd = offset + 5;
    if (questionEnd > query.length) return null;
    const type = query.readUInt16BE(offset + 1);
    const name = labels.join(".").toLowerCase();
    const typeName = type === TYPE_A ? "A" : type === TYPE_AAAA ? "AAAA" : String(type);
    queries.push(`${name} ${typeName}`);

    const entry = zone[name];
    let addresses: string[] = [];
    if (entry && (typeName === "A" || typeName === "AAAA")) {
      const sequence = entry[typeName] ?? [];
      const key = `${name} ${typeName}`;
      const index = served.get(key) ?? 0;
      served.set(key, index + 1);
      addresses = sequence.length ? sequence[Math.min(index, sequence.length - 1)] : [];
    }
    const records = addresses.map((address) => record(type, address));
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | 0x0080 | (entry ? 0 : 3), 2); // QR AA RD RA, NXDOMAIN if unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
  }

  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, host, () => resolve());
  });
  return { queries, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

function record(type: number, address: string): Buffer {
  const rdata = type === TYPE_A && isIPv4(address)
    ? Buffer.from(address.split(".").map(Number))
    : type === TYPE_AAAA && isIPv6(address)
    ? ipv6Bytes(address)
    : null;
  if (!rdata) throw new Error(`zone: ${address} is not a type ${type} address`);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(0, 6); // TTL 0
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.split("::");
  const groups = (part: string | undefined) => (part ? part.split(":") : []);
  const all = tail === undefined ? groups(head) : [...groups(head), ...Array(8 - groups(head).length - groups(tail).length).fill("0"), ...groups(tail)];
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}
