/** Sign in and sign up with e-mail and password (supabase-js auth). */
import { Anchor, Alert, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router";
import { useAuth } from "../lib/auth.tsx";
import { errorMessage } from "../lib/errors.ts";
import { useSupabase } from "../lib/supabase.ts";

export function SignInPage({ mode }: { mode: "sign-in" | "sign-up" }) {
  const supabase = useSupabase();
  const { session } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const from = (location.state as { from?: string } | null)?.from ?? "/";
  if (session) return <Navigate to={from} replace />;
  const signUp = mode === "sign-up";

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      if (signUp) {
        const { data, error } = await supabase.auth.signUp({ email, password });
        if (error) throw error;
        if (!data.session) setNotice("Check your e-mail to confirm your address, then sign in.");
        else navigate("/", { replace: true });
      } else {
        const { error } = await supabase.auth.signInWithPassword({ email, password });
        if (error) throw error;
        navigate(from, { replace: true });
      }
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
      setPassword("");
    }
  }

  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={420} component="main">
        <form onSubmit={submit} aria-labelledby="auth-title">
          <Stack>
            <div>
              <Title order={1} size="h2" id="auth-title">
                {signUp ? "Create your account" : "Sign in to Switchboard"}
              </Title>
              <Text c="dimmed" size="sm">
                Let your agents message people through your accounts, within limits you set.
              </Text>
            </div>
            <TextInput label="E-mail" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <PasswordInput
              label="Password"
              autoComplete={signUp ? "new-password" : "current-password"}
              required
              minLength={signUp ? 6 : undefined}
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            {error && (
              <Alert color="red" role="alert" title={signUp ? "Could not sign up" : "Could not sign in"}>
                {error}
              </Alert>
            )}
            {notice && <Alert color="blue">{notice}</Alert>}
            <Button type="submit" loading={busy}>
              {signUp ? "Sign up" : "Sign in"}
            </Button>
            <Text size="sm">
              {signUp ? "Already have an account? " : "New here? "}
              <Anchor component={Link} to={signUp ? "/sign-in" : "/sign-up"}>
                {signUp ? "Sign in" : "Create an account"}
              </Anchor>
            </Text>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
