/**
 * Splits a Go-style listen/dial address ("host:port", ":port",
 * "[::1]:port") into its parts. Returns undefined unless the port is a
 * decimal number in 0..65535.
 */
export function parseHostPort(addr: string): { host: string; port: number } | undefined {
  let host: string;
  let portText: string;
  if (addr.startsWith('[')) {
    const end = addr.indexOf(']');
    if (end < 0 || addr[end + 1] !== ':') return undefined;
    host = addr.slice(1, end);
    portText = addr.slice(end + 2);
  } else {
    const colon = addr.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = addr.slice(0, colon);
    // An unbracketed IPv6 literal is ambiguous, as in Go's net.SplitHostPort.
    if (host.includes(':')) return undefined;
    portText = addr.slice(colon + 1);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host, port };
}
