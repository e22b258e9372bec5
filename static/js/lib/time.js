// Times as the server sends them (epoch seconds, epoch ms or ISO strings), shown in local time.

/** Epoch ms from ms, seconds or an ISO string. */
export function ms(value) {
  if (typeof value === "number") return value < 1e11 ? value * 1000 : value;
  const number = Number(value);
  return Number.isFinite(number) && value !== "" ? ms(number) : Date.parse(value);
}

/** "14:05:09" */
export const clock = (at) =>
  new Date(ms(at)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/** The time of day for today, else the date and time: "3 Mar, 14:05". */
export function when(at) {
  const date = new Date(ms(at));
  if (Number.isNaN(date.getTime())) return "";
  if (date.toDateString() === new Date().toDateString()) return clock(at);
  return date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}
