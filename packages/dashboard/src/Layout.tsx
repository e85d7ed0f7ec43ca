/**
 * The signed-in frame: header (burger at phone width, workspace switcher, sign out),
 * the main navigation, and the selected workspace's page.
 */
import { Alert, AppShell, Burger, Button, Center, Group, Loader, NavLink, ScrollArea, Select, Text, Title, VisuallyHidden } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { Suspense } from "react";
import { NavLink as RouterNavLink, Outlet, useLocation, useNavigate, useParams } from "react-router";
import { useMe } from "./lib/auth.tsx";
import { useSupabase } from "./lib/supabase.ts";
import { CurrentWorkspaceProvider, useWorkspaces } from "./lib/workspace.tsx";

export const SECTIONS = [
  { path: "overview", label: "Overview" },
  { path: "agents", label: "Agents" },
  { path: "connections", label: "Connections" },
  { path: "numbers", label: "Numbers" },
  { path: "routes", label: "Routes" },
  { path: "members", label: "Members" },
  { path: "activity", label: "Activity" },
  { path: "usage", label: "Usage" },
  { path: "audit", label: "Audit" },
] as const;

export function Layout() {
  const [opened, { toggle, close }] = useDisclosure(false);
  const { workspaceId } = useParams();
  const workspaces = useWorkspaces();
  const supabase = useSupabase();
  const me = useMe();
  const navigate = useNavigate();
  const location = useLocation();
  const workspace = workspaces.data?.find((w) => w.id === workspaceId);
  const section = location.pathname.split("/")[3] ?? "overview";

  const switchTo = (id: string | null) => {
    if (id && id !== workspaceId) navigate(`/w/${id}/${SECTIONS.some((s) => s.path === section) ? section : "overview"}`);
  };

  return (
    <AppShell header={{ height: 60 }} navbar={{ width: 230, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={opened ? "Close navigation" : "Open navigation"} />
            <Title order={1} size="h4" visibleFrom="xs">
              Switchboard
            </Title>
          </Group>
          <Group gap="sm" wrap="nowrap">
            <Select
              label={<VisuallyHidden>Workspace</VisuallyHidden>}
              aria-label="Workspace"
              w={{ base: 170, sm: 260 }}
              data={(workspaces.data ?? []).map((w) => ({ value: w.id, label: w.personal ? `${w.name} (personal)` : w.name }))}
              value={workspaceId ?? null}
              onChange={switchTo}
              allowDeselect={false}
              comboboxProps={{ withinPortal: true }}
            />
            <Button variant="subtle" size="compact-sm" onClick={() => void supabase.auth.signOut()} title={`Signed in as ${me.email}`}>
              Sign out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main navigation">
        <ScrollArea>
          <nav aria-label="Sections">
            {SECTIONS.map((s) => (
              <NavLink
                key={s.path}
                component={RouterNavLink}
                to={`/w/${workspaceId}/${s.path}`}
                label={s.label}
                active={section === s.path}
                onClick={close}
              />
            ))}
          </nav>
          <Text size="xs" c="dimmed" mt="lg" px="sm">
            Signed in as {me.email}
          </Text>
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        {workspaces.error ? (
          <Alert color="red" title="Could not load your workspaces">
            {workspaces.error}
          </Alert>
        ) : !workspaces.data ? (
          <Center h="40vh">
            <Loader aria-label="Loading" />
          </Center>
        ) : !workspace ? (
          <Alert color="yellow" title="Workspace not found">
            You are not a member of this workspace (or it does not exist). Pick one in the workspace switcher.
          </Alert>
        ) : (
          <CurrentWorkspaceProvider key={workspace.id} workspace={workspace}>
            <Suspense fallback={<Center h="40vh"><Loader aria-label="Loading" /></Center>}>
              <Outlet />
            </Suspense>
          </CurrentWorkspaceProvider>
        )}
      </AppShell.Main>
    </AppShell>
  );
}
