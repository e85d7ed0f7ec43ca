/** Small display helpers. */
export function shortId(id: string | null | undefined): string {
  return id ? `${id.slice(0, 8)}…` : "—";
}

export function formatTime(value: string | null | undefined): string {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function formatDay(value: string): string {
  const d = new Date(`${value.slice(0, 10)}T00:00:00Z`);
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

/** Today's date as YYYY-MM-DD in UTC (quota days are UTC days). */
export function utcDay(date = new Date()): string {
  return date.toISOString().slice(0, 10);
}

export function limitText(limit: number | null | undefined): string {
  return limit === null || limit === undefined ? "no limit" : String(limit);
}

/** A datetime-local input's value to an ISO timestamp (or null when empty). */
export function localToIso(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** An ISO timestamp to a datetime-local input's value. */
export function isoToLocal(value: string | null | undefined): string {
  if (!value) return "";
  const d = new Date(value);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export const STATUS_COLORS: Record<string, string> = {
  succeeded: "green",
  partial: "yellow",
  pending: "blue",
  failed: "red",
  denied: "orange",
  unknown: "gray",
  active: "green",
  disabled: "gray",
  error: "red",
  inactive: "gray",
  delivered: "green",
  sent: "teal",
  queued: "blue",
  undelivered: "orange",
  read: "green",
};
