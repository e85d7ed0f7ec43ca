/**
 * Phone number normalisation to E.164 with libphonenumber-js "max" metadata (strict
 * .isValid(), not just a length check). There is deliberately no default country:
 * agents act for people in many countries, so a national number like "0412 345 678"
 * is ambiguous and is rejected instead of guessed.
 */
import { parsePhoneNumberWithError } from "libphonenumber-js/max";

const ALLOWED_CHARS = /^[+\d\s\-().]+$/;

/**
 * Returns the E.164 form of an international phone number ("+61 412 345 678",
 * "0061-412-345-678", "+1 (212) 555-0100" ...). Throws an Error with a message an
 * agent can act on when the input is not a valid international number.
 */
export function normalizePhoneNumber(input: string): string {
  const shown = JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input);
  const trimmed = input.trim();
  // Letters ("1-800-FLOWERS"), extensions and other symbols are not SMS-able numbers.
  if (!trimmed || !ALLOWED_CHARS.test(trimmed)) {
    throw new Error(`Invalid phone number ${shown}: use international format with a country code, e.g. +61412345678.`);
  }
  // Drop formatting, then treat "00" (the international call prefix in most countries)
  // as "+", the canonical form.
  const international = trimmed.replace(/[\s\-().]/g, "").replace(/^00/, "+");
  if (!/^\+\d+$/.test(international)) {
    throw new Error(
      `Invalid phone number ${shown}: numbers must be international, starting with + and the country code (e.g. +61412345678).`,
    );
  }
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(international);
  } catch {
    throw new Error(`Invalid phone number ${shown}: not a recognisable international number.`);
  }
  if (!parsed.isValid()) {
    throw new Error(`Invalid phone number ${shown}: not a valid number for country code +${parsed.countryCallingCode}.`);
  }
  return parsed.number;
}
