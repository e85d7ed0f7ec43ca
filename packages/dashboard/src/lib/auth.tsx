/** The signed-in session (supabase-js auth), for the whole app. */
import type { Session } from "@supabase/supabase-js";
import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { useSupabase } from "./supabase.ts";

interface AuthValue {
  session: Session | null;
  /** false until supabase-js has read the stored session. */
  ready: boolean;
}

const AuthContext = createContext<AuthValue>({ session: null, ready: false });

export function AuthProvider({ children }: { children: ReactNode }) {
  const supabase = useSupabase();
  const [value, setValue] = useState<AuthValue>({ session: null, ready: false });
  useEffect(() => {
    let alive = true;
    void supabase.auth.getSession().then(({ data }) => alive && setValue({ session: data.session, ready: true }));
    const { data } = supabase.auth.onAuthStateChange((_event, session) => {
      if (alive) setValue({ session, ready: true });
    });
    return () => {
      alive = false;
      data.subscription.unsubscribe();
    };
  }, [supabase]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export const useAuth = (): AuthValue => useContext(AuthContext);

/** The signed-in user's id and e-mail (pages under the signed-in layout only). */
export function useMe(): { id: string; email: string } {
  const { session } = useAuth();
  if (!session) throw new Error("useMe without a session");
  return { id: session.user.id, email: session.user.email ?? "" };
}
