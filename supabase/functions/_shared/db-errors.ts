/**
 * The safety net behind input validation: when PostgreSQL refuses a value the
 * functions did not foresee (a character it cannot store, a value too long or out of
 * range, an index row too big), the fault is the request's, so the caller gets
 * `400 invalid_request` rather than a 500. Validation stays the first line — this only
 * catches what it missed; every other database error is left to the caller to classify.
 */
import { ApiError } from "./errors.ts";

/** Data-exception SQLSTATEs caused by a value in the request, with what to tell the caller. */
const INPUT_SQLSTATES: Record<string, string> = {
  "22P05": "a value contains a character the database cannot store (such as NUL)", // untranslatable_character
  "22021": "a value contains a character the database cannot store (such as NUL)", // character_not_in_repertoire
  "22P02": "a value is not in a valid format", // invalid_text_representation (e.g. an unpaired surrogate in JSON)
  "22001": "a value is too long", // string_data_right_truncation
  "22003": "a number is out of range", // numeric_value_out_of_range
  "22007": "a date or time is not valid", // invalid_datetime_format
  "22008": "a date or time is out of range", // datetime_field_overflow
  "54000": "a value is too large to store", // program_limit_exceeded (e.g. index row size)
};

/**
 * `400 invalid_request` for a PostgreSQL error caused by a value in the request, else
 * null. The database's own message is not passed on (it can name internals); the
 * SQLSTATE is, in `details.sqlstate`.
 */
export function classifyDbError(error: unknown): ApiError | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !Object.hasOwn(INPUT_SQLSTATES, code)) return null;
  return new ApiError("invalid_request", `the request was refused: ${INPUT_SQLSTATES[code]}`, { sqlstate: code });
}
