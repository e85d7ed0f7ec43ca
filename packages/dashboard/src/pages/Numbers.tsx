/**
 * Numbers and senders: a workspace's phone numbers and who they are assigned to (a
 * member, or the pool), each member's default number per account, the sender
 * identities of mail accounts, and the one default mail account.
 */
import { Badge, Button, Card, Checkbox, Group, Modal, MultiSelect, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useState } from "react";
import { ConfirmButton, Empty, ErrorAlert, PageHeader, StatusBadge, useAction } from "../components.tsx";
import { useMe } from "../lib/auth.tsx";
import { connectionLabel, hasNumbers, isMail, useConnections, type ConnectionRow } from "../lib/catalogue.ts";
import { functionErrorMessage, must } from "../lib/errors.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";

const CAPABILITIES = ["sms", "mms", "voice", "whatsapp"];
const SYNCABLE = new Set(["twilio", "telnyx", "exotel"]);

export function NumbersPage() {
  const supabase = useSupabase();
  const { workspace, isAdmin, members, memberLabel } = useCurrent();
  const me = useMe();
  const connections = useConnections(workspace.id);
  const numbers = useLoad(async () => must(await supabase.from("phone_numbers").select("*").eq("workspace_id", workspace.id).order("e164")), [supabase, workspace.id]);
  const defaults = useLoad(async () => must(await supabase.from("member_default_numbers").select("*").eq("workspace_id", workspace.id)), [supabase, workspace.id]);
  const [adding, { open: openAdd, close: closeAdd }] = useDisclosure(false);
  const action = useAction();
  const numberConnections = (connections.data ?? []).filter(hasNumbers);
  const mailConnections = (connections.data ?? []).filter(isMail);
  const connectionName = (id: string) => connections.data?.find((c) => c.id === id)?.name ?? "—";
  const memberOptions = [{ value: "", label: "Pool (anyone may use it)" }, ...(members.data ?? []).map((m) => ({ value: m.user_id, label: m.label }))];
  const reloadNumbers = async () => {
    await Promise.all([numbers.reload(), defaults.reload()]);
  };
  const update = (id: string, changes: Record<string, unknown>, message: string) =>
    void action.run(async () => {
      must(await supabase.rpc("update_phone_number", { p_phone_number_id: id, p_changes: changes as never }));
      await reloadNumbers();
    }, message);

  const sync = (c: ConnectionRow) =>
    void action.run(async () => {
      const { data, error } = await supabase.functions.invoke(`${c.provider!.function_name}/numbers/sync`, { body: { connection_id: c.id } });
      if (error) throw new Error(await functionErrorMessage(error));
      await reloadNumbers();
      return data;
    }, `Numbers of ${c.name} synced`);

  return (
    <Stack>
      <PageHeader
        title="Numbers"
        description="Numbers belong to an account of the workspace and are assigned to a member or left in the pool. A send without a from number goes out from the member's default."
        actions={
          isAdmin && (
            <>
              {numberConnections
                .filter((c) => SYNCABLE.has(c.provider?.function_name ?? ""))
                .map((c) => (
                  <Button key={c.id} variant="default" onClick={() => sync(c)} loading={action.busy}>
                    Sync {c.name}
                  </Button>
                ))}
              <Button onClick={openAdd} disabled={numberConnections.length === 0}>
                Add a number
              </Button>
            </>
          )
        }
      />
      <ErrorAlert error={numbers.error ?? connections.error ?? action.error} />
      <Card withBorder>
        {numbers.data?.length === 0 ? (
          <Empty>No numbers on the accounts you may see.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={820}>
            <Table aria-label="Phone numbers">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Number</Table.Th>
                  <Table.Th>Account</Table.Th>
                  <Table.Th>Capabilities</Table.Th>
                  <Table.Th>Assigned to</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Actions</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(numbers.data ?? []).map((n) => {
                  const mine = defaults.data?.some((d) => d.user_id === me.id && d.phone_number_id === n.id);
                  return (
                    <Table.Tr key={n.id}>
                      <Table.Td>
                        <Text fw={500}>{n.e164}</Text>
                        <Text size="xs" c="dimmed">
                          {n.friendly_name}
                        </Text>
                        {n.is_default && (
                          <Badge size="xs" variant="outline">
                            account default
                          </Badge>
                        )}
                      </Table.Td>
                      <Table.Td>{connectionName(n.connection_id)}</Table.Td>
                      <Table.Td>{n.capabilities.join(", ")}</Table.Td>
                      <Table.Td>
                        {isAdmin ? (
                          <Select
                            aria-label={`Assignee of ${n.e164}`}
                            data={memberOptions}
                            value={n.assigned_to ?? ""}
                            onChange={(v) => update(n.id, { assigned_to: v || null }, `${n.e164} assigned`)}
                            allowDeselect={false}
                            w={220}
                          />
                        ) : n.assigned_to ? (
                          memberLabel(n.assigned_to)
                        ) : (
                          "Pool"
                        )}
                      </Table.Td>
                      <Table.Td>
                        <StatusBadge status={n.status} />
                      </Table.Td>
                      <Table.Td>
                        <Group gap="xs" wrap="nowrap">
                          {mine ? (
                            <Badge color="teal">your default</Badge>
                          ) : (
                            n.status === "active" &&
                            (!n.assigned_to || n.assigned_to === me.id || isAdmin) && (
                              <Button
                                size="compact-sm"
                                variant="light"
                                aria-label={`Make ${n.e164} my default`}
                                onClick={() =>
                                  void action.run(async () => {
                                    must(await supabase.rpc("set_member_default_number", { p_phone_number_id: n.id }));
                                    await defaults.reload();
                                  }, `${n.e164} is your default on ${connectionName(n.connection_id)}`)
                                }
                              >
                                Make my default
                              </Button>
                            )
                          )}
                          {isAdmin && !n.is_default && (
                            <Button size="compact-sm" variant="subtle" onClick={() => update(n.id, { is_default: true }, `${n.e164} is the account's default`)} aria-label={`Make ${n.e164} the account default`}>
                              Account default
                            </Button>
                          )}
                          {isAdmin && (
                            <Button
                              size="compact-sm"
                              variant="subtle"
                              onClick={() => update(n.id, { status: n.status === "active" ? "inactive" : "active" }, `${n.e164} ${n.status === "active" ? "deactivated" : "activated"}`)}
                            >
                              {n.status === "active" ? "Deactivate" : "Activate"}
                            </Button>
                          )}
                          {isAdmin && (
                            <ConfirmButton
                              label="Delete"
                              aria-label={`Delete ${n.e164}`}
                              title="Delete number"
                              message={`${n.e164} is removed from ${connectionName(n.connection_id)}.`}
                              confirmLabel="Delete"
                              onConfirm={async () => {
                                must(await supabase.rpc("delete_phone_number", { p_phone_number_id: n.id }));
                                await reloadNumbers();
                              }}
                            />
                          )}
                        </Group>
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>

      <MemberDefaults
        defaults={defaults.data ?? []}
        numbers={numbers.data ?? []}
        connectionName={connectionName}
        onChanged={defaults.reload}
      />

      <Senders mailConnections={mailConnections} onDefaultChanged={connections.reload} />

      <Modal opened={adding} onClose={closeAdd} title="Add a number" size="lg">
        <AddNumberForm
          connections={numberConnections}
          memberOptions={memberOptions}
          onAdded={async () => {
            closeAdd();
            await reloadNumbers();
          }}
        />
      </Modal>
    </Stack>
  );
}

function AddNumberForm({ connections, memberOptions, onAdded }: { connections: ConnectionRow[]; memberOptions: { value: string; label: string }[]; onAdded: () => Promise<void> }) {
  const supabase = useSupabase();
  const [connectionId, setConnectionId] = useState<string | null>(connections[0]?.id ?? null);
  const [e164, setE164] = useState("");
  const [name, setName] = useState("");
  const [capabilities, setCapabilities] = useState<string[]>(["sms"]);
  const [assignee, setAssignee] = useState<string>("");
  const [isDefault, setIsDefault] = useState(false);
  const action = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (!connectionId) return;
        void action
          .run(
            async () =>
              must(
                await supabase.rpc("add_phone_number", {
                  p_connection_id: connectionId,
                  p_e164: e164.trim(),
                  p_capabilities: capabilities,
                  ...(name.trim() ? { p_friendly_name: name.trim() } : {}),
                  ...(assignee ? { p_assigned_to: assignee } : {}),
                  ...(isDefault ? { p_is_default: true } : {}),
                }),
              ),
            `${e164} added`,
          )
          .then(async (r) => r !== undefined && (await onAdded()));
      }}
    >
      <Stack gap="sm">
        <Select label="Account" required data={connections.map((c) => ({ value: c.id, label: connectionLabel(c) }))} value={connectionId} onChange={setConnectionId} />
        <TextInput label="Number" description="E.164, e.g. +61480000001" required pattern="^\+[1-9][0-9]{1,14}$" value={e164} onChange={(e) => setE164(e.currentTarget.value)} data-autofocus />
        <TextInput label="Friendly name" maxLength={100} value={name} onChange={(e) => setName(e.currentTarget.value)} />
        <MultiSelect label="Capabilities" withAsterisk data={CAPABILITIES} value={capabilities} onChange={setCapabilities} />
        <Select label="Assigned to" data={memberOptions} value={assignee} onChange={(v) => setAssignee(v ?? "")} allowDeselect={false} />
        <Checkbox label="The account's default number" checked={isDefault} onChange={(e) => setIsDefault(e.currentTarget.checked)} />
        <ErrorAlert error={action.error} title="Could not add the number" />
        <Group justify="flex-end">
          <Button type="submit" loading={action.busy}>
            Add number
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

function MemberDefaults({
  defaults,
  numbers,
  connectionName,
  onChanged,
}: {
  defaults: { user_id: string; connection_id: string; phone_number_id: string }[];
  numbers: { id: string; e164: string; connection_id: string; status: string; assigned_to: string | null }[];
  connectionName: (id: string) => string;
  onChanged: () => Promise<void>;
}) {
  const supabase = useSupabase();
  const { isAdmin, members, memberLabel } = useCurrent();
  const [member, setMember] = useState<string | null>(null);
  const [number, setNumber] = useState<string | null>(null);
  const action = useAction();
  const usable = numbers.filter((n) => n.status === "active" && (!n.assigned_to || n.assigned_to === member));
  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="xs">
        Default numbers
      </Title>
      <Text size="xs" c="dimmed" mb="xs">
        The number each member's sends (and their agents') go out from on an account when a send names none.
      </Text>
      {defaults.length === 0 ? (
        <Empty>No member has chosen a default number.</Empty>
      ) : (
        <Table aria-label="Default numbers">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Member</Table.Th>
              <Table.Th>Account</Table.Th>
              <Table.Th>Number</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {defaults.map((d) => (
              <Table.Tr key={`${d.user_id}-${d.connection_id}`}>
                <Table.Td>{memberLabel(d.user_id)}</Table.Td>
                <Table.Td>{connectionName(d.connection_id)}</Table.Td>
                <Table.Td>{numbers.find((n) => n.id === d.phone_number_id)?.e164 ?? "—"}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {isAdmin && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (!member || !number) return;
            void action
              .run(async () => must(await supabase.rpc("set_member_default_number", { p_phone_number_id: number, p_user_id: member })), "Default number set")
              .then(async (r) => r !== undefined && (await onChanged()));
          }}
        >
          <Group align="flex-end" mt="sm" wrap="wrap">
            <Select label="Member" data={(members.data ?? []).map((m) => ({ value: m.user_id, label: m.label }))} value={member} onChange={setMember} w={240} />
            <Select label="Default number" data={usable.map((n) => ({ value: n.id, label: `${n.e164} (${connectionName(n.connection_id)})` }))} value={number} onChange={setNumber} w={280} />
            <Button type="submit" variant="light" loading={action.busy} disabled={!member || !number}>
              Set default
            </Button>
          </Group>
          <ErrorAlert error={action.error} title="Could not set the default number" />
        </form>
      )}
    </Card>
  );
}

function Senders({ mailConnections, onDefaultChanged }: { mailConnections: ConnectionRow[]; onDefaultChanged: () => Promise<void> }) {
  const supabase = useSupabase();
  const { workspace, isAdmin } = useCurrent();
  const identities = useLoad(async () => must(await supabase.from("sender_identities").select("*").eq("workspace_id", workspace.id).order("email")), [supabase, workspace.id]);
  const [connectionId, setConnectionId] = useState<string | null>(null);
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [verified, setVerified] = useState(false);
  const action = useAction();
  const current = mailConnections.find((c) => c.is_default_mail);
  const update = (id: string, changes: Record<string, unknown>, message: string) =>
    void action.run(async () => {
      must(await supabase.rpc("update_sender_identity", { p_identity_id: id, p_changes: changes as never }));
      await identities.reload();
    }, message);
  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="xs">
        Mail senders
      </Title>
      {mailConnections.length === 0 ? (
        <Empty>No mail accounts.</Empty>
      ) : (
        <Stack gap="sm">
          <Group align="flex-end" wrap="wrap">
            <Select
              label="Default mail account"
              description="A mail send that names no account uses it"
              data={mailConnections.map((c) => ({ value: c.id, label: connectionLabel(c) }))}
              value={current?.id ?? null}
              disabled={!isAdmin}
              allowDeselect={false}
              onChange={(id) =>
                id &&
                id !== current?.id &&
                void action.run(async () => {
                  must(await supabase.rpc("set_default_mail_connection", { p_connection_id: id }));
                  await onDefaultChanged();
                }, "Default mail account changed")
              }
              w={320}
            />
          </Group>
          <ErrorAlert error={identities.error ?? action.error} />
          {identities.data?.length === 0 ? (
            <Empty>No sender identities: sends use each account's from address.</Empty>
          ) : (
            <Table.ScrollContainer minWidth={560}>
              <Table aria-label="Sender identities">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Address</Table.Th>
                    <Table.Th>Account</Table.Th>
                    <Table.Th>Verified</Table.Th>
                    <Table.Th>Actions</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {(identities.data ?? []).map((s) => (
                    <Table.Tr key={s.id}>
                      <Table.Td>
                        {s.name ? `${s.name} <${s.email}>` : s.email}{" "}
                        {s.is_default && (
                          <Badge size="xs" variant="outline">
                            default
                          </Badge>
                        )}
                      </Table.Td>
                      <Table.Td>{mailConnections.find((c) => c.id === s.connection_id)?.name ?? "—"}</Table.Td>
                      <Table.Td>
                        <Checkbox
                          aria-label={`${s.email} is verified`}
                          checked={s.verified}
                          disabled={!isAdmin}
                          onChange={(e) => update(s.id, { verified: e.currentTarget.checked }, "Identity updated")}
                        />
                      </Table.Td>
                      <Table.Td>
                        {isAdmin && (
                          <Group gap="xs">
                            {!s.is_default && (
                              <Button size="compact-sm" variant="light" onClick={() => update(s.id, { is_default: true }, `${s.email} is the default sender`)}>
                                Make default
                              </Button>
                            )}
                            <ConfirmButton
                              label="Delete"
                              aria-label={`Delete ${s.email}`}
                              title="Delete sender identity"
                              message={`${s.email} is no longer a from address of this account.`}
                              confirmLabel="Delete"
                              onConfirm={async () => {
                                must(await supabase.rpc("delete_sender_identity", { p_identity_id: s.id }));
                                await identities.reload();
                              }}
                            />
                          </Group>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )}
          {isAdmin && (
            <form
              onSubmit={(e) => {
                e.preventDefault();
                if (!connectionId) return;
                void action
                  .run(
                    async () =>
                      must(
                        await supabase.rpc("add_sender_identity", {
                          p_connection_id: connectionId,
                          p_email: email.trim(),
                          p_verified: verified,
                          ...(name.trim() ? { p_name: name.trim() } : {}),
                        }),
                      ),
                    "Sender identity added",
                  )
                  .then(async (r) => {
                    if (r === undefined) return;
                    setEmail("");
                    setName("");
                    await identities.reload();
                  });
              }}
            >
              <Group align="flex-end" wrap="wrap">
                <Select label="Mail account" required data={mailConnections.map((c) => ({ value: c.id, label: c.name }))} value={connectionId} onChange={setConnectionId} w={200} />
                <TextInput label="From address" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} w={240} />
                <TextInput label="From name" value={name} onChange={(e) => setName(e.currentTarget.value)} w={180} />
                <Checkbox label="Verified" checked={verified} onChange={(e) => setVerified(e.currentTarget.checked)} mb={8} />
                <Button type="submit" variant="light">
                  Add sender
                </Button>
              </Group>
            </form>
          )}
        </Stack>
      )}
    </Card>
  );
}
