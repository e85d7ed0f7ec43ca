/**
 * Errors in plain words. RPC and table errors carry PostgREST's JSON ({code, message,
 * details, hint}); the functions answer with the envelope {"error":{"code","message"}}.
 * Either way the person sees the message the server wrote, which the migrations word
 * for people ("a member cannot grant an agent more than they hold: …").
 */
import { FunctionsHttpError } from "@supabase/supabase-js";

export function errorMessage(error: unknown): string {
  if (!error) return "Something went wrong.";
  if (typeof error === "string") return error;
  const e = error as { message?: unknown; details?: unknown; hint?: unknown; code?: unknown };
  if (typeof e.message === "string" && e.message !== "") {
    let text = e.message;
    if (typeof e.details === "string" && e.details && !text.includes(e.details)) text += ` (${e.details})`;
    return text;
  }
  return String(error);
}

/** The message of a function's error envelope (or of a network failure). */
export async function functionErrorMessage(error: unknown): Promise<string> {
  if (error instanceof FunctionsHttpError) {
    try {
      const body = (await (error.context as Response).clone().json()) as { error?: { message?: string }; message?: string };
      if (body?.error?.message) return body.error.message;
      if (body?.message) return body.message;
    } catch {
      // not JSON
    }
    return `${(error.context as Response).status} ${(error.context as Response).statusText}`.trim();
  }
  return errorMessage(error);
}

/**
 * Throws the error of a supabase-js result, or returns its data (a read without an
 * error always has data; an RPC here always returns JSON).
 */
export function must<T>(result: { data: T; error: unknown }): NonNullable<T> {
  if (result.error) throw result.error;
  return result.data as NonNullable<T>;
}
