/** A node ID as LiteFS prints it: 16 uppercase hex digits (`%016X`). */
export function formatNodeID(id: bigint): string {
  return id.toString(16).toUpperCase().padStart(16, '0');
}
