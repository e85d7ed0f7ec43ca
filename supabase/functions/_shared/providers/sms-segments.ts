/**
 * SMS segment (message part) counting as ClickSend bills it:
 *  - GSM-7: 160 units in one part, 153 per part when split; extension-table characters
 *    (^ { } \ [ ~ ] | € and form feed) take 2 units (escape + char).
 *  - Any character outside GSM 03.38 makes the whole message UCS-2: 70 single, 67 per
 *    part, counted in UTF-16 code units (an emoji takes 2).
 *  - A line break (LF, CR or CRLF) counts as 2 units (ClickSend help centre).
 * Used for summaries and as a fallback when the provider does not report message_parts.
 */

export type SmsEncoding = "GSM-7" | "UCS-2";

export interface SmsSegmentInfo {
  encoding: SmsEncoding;
  /** Billable units: GSM septets or UTF-16 code units, line breaks counted as 2. */
  units: number;
  /** Parts needed to send the whole body (0 for an empty body). */
  segments: number;
  /** Units per part for this body (160/153 or 70/67). */
  perSegment: number;
}

// GSM 03.38 basic table (LF and CR are handled as line breaks).
const GSM_BASIC = new Set(
  Array.from(
    "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
      "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
  ),
);
// GSM 03.38 extension table: each costs an escape plus the character.
const GSM_EXTENDED = new Set(Array.from("^{}\\[~]|€\f"));

/** Counts segments for one SMS body. Never throws. */
export function countSmsSegments(body: string): SmsSegmentInfo {
  const text = body.replace(/\r\n|\r|\n/g, "\n");
  const lineBreaks = countLineBreaks(text);
  const gsm = gsmUnits(text);
  if (gsm !== null) {
    const units = gsm + lineBreaks * 2;
    return info("GSM-7", units, 160, 153);
  }
  // UTF-16 length, with each "\n" (1 unit) counted as 2.
  const units = text.length + lineBreaks;
  return info("UCS-2", units, 70, 67);
}

function info(encoding: SmsEncoding, units: number, single: number, multi: number): SmsSegmentInfo {
  const segments = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
  return { encoding, units, segments, perSegment: segments > 1 ? multi : single };
}

/** GSM units excluding line breaks, or null if any character needs UCS-2. */
function gsmUnits(text: string): number | null {
  let units = 0;
  for (const ch of text) {
    if (ch === "\n") continue;
    if (GSM_BASIC.has(ch)) units += 1;
    else if (GSM_EXTENDED.has(ch)) units += 2;
    else return null;
  }
  return units;
}

function countLineBreaks(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}
