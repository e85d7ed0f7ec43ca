/**
 * Routes: the order in which a channel send (sms_send, mms_send, whatsapp_send,
 * email_send) tries the workspace's accounts, for everyone or for one member. A send
 * moves to the next account only when the provider proved it did not take the message.
 */
import { ActionIcon, Alert, Button, Card, Group, Select, SimpleGrid, Stack, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { Empty, ErrorAlert, PageHeader, useAction } from "../components.tsx";
import { connectionLabel, ROUTE_CHANNELS, useConnections, type ConnectionRow } from "../lib/catalogue.ts";
import { must } from "../lib/errors.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";

const CHANNEL_NAMES: Record<string, string> = { sms: "SMS", mms: "MMS", whatsapp: "WhatsApp", email: "E-mail" };

export function RoutesPage() {
  const supabase = useSupabase();
  const { workspace, isAdmin, members } = useCurrent();
  const connections = useConnections(workspace.id);
  const [member, setMember] = useState<string>("");
  const routes = useLoad(async () => {
    const [r, rc] = await Promise.all([
      supabase.from("routes").select("*").eq("workspace_id", workspace.id),
      supabase.from("route_connections").select("*").eq("workspace_id", workspace.id).order("position"),
    ]);
    const steps = must(rc);
    return must(r).map((route) => ({ ...route, connectionIds: steps.filter((s) => s.route_id === route.id).map((s) => s.connection_id) }));
  }, [supabase, workspace.id]);

  return (
    <Stack>
      <PageHeader
        title="Routes"
        description="The order in which agents' channel sends try this workspace's accounts. A send fails over to the next only when the provider proved it did not take the message: one operation, quota counted once."
      />
      {!isAdmin && <Alert color="blue">Owners and admins set routes; you see the workspace's and your own.</Alert>}
      <ErrorAlert error={routes.error ?? connections.error} />
      {!workspace.personal && (
        <Select
          label="Route for"
          data={[{ value: "", label: "Everyone in the workspace" }, ...(members.data ?? []).map((m) => ({ value: m.user_id, label: m.label }))]}
          value={member}
          onChange={(v) => setMember(v ?? "")}
          allowDeselect={false}
          w={320}
          description="A member's own route wins over the workspace's"
        />
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {ROUTE_CHANNELS.map((channel) => {
          const route = routes.data?.find((r) => r.channel === channel && (r.user_id ?? "") === member);
          const candidates = (connections.data ?? []).filter((c) => c.provider?.channels.includes(channel));
          return (
            <RouteEditor
              key={`${channel}-${member}-${route?.id ?? "none"}-${route?.updated_at ?? ""}`}
              channel={channel}
              saved={route?.connectionIds ?? []}
              candidates={candidates}
              canEdit={isAdmin}
              onSave={async (ids) => {
                must(
                  await supabase.rpc("set_route", {
                    p_workspace_id: workspace.id,
                    p_channel: channel,
                    p_connection_ids: ids,
                    ...(member ? { p_user_id: member } : {}),
                  }),
                );
                await routes.reload();
              }}
            />
          );
        })}
      </SimpleGrid>
    </Stack>
  );
}

function RouteEditor({
  channel,
  saved,
  candidates,
  canEdit,
  onSave,
}: {
  channel: string;
  saved: string[];
  candidates: ConnectionRow[];
  canEdit: boolean;
  onSave: (ids: string[]) => Promise<void>;
}) {
  const [ids, setIds] = useState<string[]>(saved);
  const [adding, setAdding] = useState<string | null>(null);
  const action = useAction();
  useEffect(() => setIds(saved), [saved]);
  const name = (id: string) => {
    const c = candidates.find((x) => x.id === id);
    return c ? connectionLabel(c) : "an account you may not see";
  };
  const move = (i: number, by: number) =>
    setIds((list) => {
      const next = [...list];
      const [item] = next.splice(i, 1);
      next.splice(i + by, 0, item!);
      return next;
    });
  const dirty = ids.join() !== saved.join();
  const label = CHANNEL_NAMES[channel] ?? channel;
  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="xs">
        {label}
      </Title>
      {candidates.length === 0 ? (
        <Empty>No {label} accounts.</Empty>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(() => onSave(ids), ids.length ? `${label} route saved` : `${label} route removed`);
          }}
          aria-label={`${label} route`}
        >
          <Stack gap="xs">
            {ids.length === 0 ? (
              <Text size="sm" c="dimmed">
                No route: a send uses the only account it may, or the one it names.
              </Text>
            ) : (
              <ol style={{ margin: 0, paddingLeft: "1.2rem" }}>
                {ids.map((id, i) => (
                  <li key={id}>
                    <Group justify="space-between" wrap="nowrap" gap="xs">
                      <Text size="sm">{name(id)}</Text>
                      {canEdit && (
                        <Group gap={4} wrap="nowrap">
                          <ActionIcon variant="subtle" aria-label={`Move ${name(id)} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                            <span aria-hidden>↑</span>
                          </ActionIcon>
                          <ActionIcon variant="subtle" aria-label={`Move ${name(id)} down`} disabled={i === ids.length - 1} onClick={() => move(i, 1)}>
                            <span aria-hidden>↓</span>
                          </ActionIcon>
                          <ActionIcon variant="subtle" color="red" aria-label={`Remove ${name(id)} from the route`} onClick={() => setIds((l) => l.filter((x) => x !== id))}>
                            <span aria-hidden>✕</span>
                          </ActionIcon>
                        </Group>
                      )}
                    </Group>
                  </li>
                ))}
              </ol>
            )}
            {canEdit && (
              <>
                <Group align="flex-end" wrap="nowrap">
                  <Select
                    label="Add an account"
                    data={candidates.filter((c) => !ids.includes(c.id)).map((c) => ({ value: c.id, label: connectionLabel(c) }))}
                    value={adding}
                    onChange={setAdding}
                    style={{ flex: 1 }}
                  />
                  <Button
                    variant="default"
                    disabled={!adding}
                    onClick={() => {
                      if (adding) setIds((l) => [...l, adding]);
                      setAdding(null);
                    }}
                  >
                    Add
                  </Button>
                </Group>
                <ErrorAlert error={action.error} title="Could not save the route" />
                <Group justify="flex-end">
                  <Button type="submit" disabled={!dirty} loading={action.busy}>
                    Save route
                  </Button>
                </Group>
              </>
            )}
          </Stack>
        </form>
      )}
    </Card>
  );
}
