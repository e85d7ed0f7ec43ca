/**
 * Members and invitations: invite by e-mail with a role (the token is shown once),
 * revoke an invitation, change a role, remove a member, leave, transfer ownership.
 * Who may do what follows the RPCs: admins invite (members; only the owner invites
 * admins), revoke and remove members; the owner changes roles and transfers ownership.
 */
import { Alert, Badge, Button, Card, Group, Modal, Select, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useState } from "react";
import { useNavigate } from "react-router";
import { ConfirmButton, CopyField, Empty, ErrorAlert, PageHeader, useAction } from "../components.tsx";
import { useMe } from "../lib/auth.tsx";
import { must } from "../lib/errors.ts";
import { formatTime } from "../lib/format.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent, useWorkspaces, type Member } from "../lib/workspace.tsx";

interface Issued {
  email: string;
  role: string;
  token: string;
  expires_at: string;
}

export function MembersPage() {
  const supabase = useSupabase();
  const { workspace, isAdmin, isOwner, members } = useCurrent();
  const me = useMe();
  const workspaces = useWorkspaces();
  const navigate = useNavigate();
  const invitations = useLoad(
    async () =>
      isAdmin
        ? must(await supabase.from("workspace_invitations").select("*").eq("workspace_id", workspace.id).eq("status", "pending").order("created_at", { ascending: false }))
        : [],
    [supabase, workspace.id, isAdmin],
  );
  const [issued, setIssued] = useState<Issued | null>(null);
  const action = useAction();
  const reloadAll = async () => {
    await Promise.all([members.reload(), invitations.reload()]);
  };

  if (workspace.personal) {
    return (
      <Stack>
        <PageHeader title="Members" description="A personal workspace has no other members." />
        <Alert color="blue">Create a team workspace on the Overview page to invite people and manage roles.</Alert>
      </Stack>
    );
  }

  const changeRole = (m: Member, role: string | null) =>
    role &&
    role !== m.role &&
    void action.run(async () => {
      must(await supabase.rpc("change_workspace_member_role", { p_workspace_id: workspace.id, p_user_id: m.user_id, p_role: role }));
      await members.reload();
    }, `Role changed to ${role}`);

  return (
    <Stack>
      <PageHeader
        title="Members"
        description="Owners and admins manage the workspace's accounts and members' permissions; members use what they are given and run their own agents."
      />
      <ErrorAlert error={members.error ?? action.error} />
      <Card withBorder>
        <Table.ScrollContainer minWidth={560}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Member</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Joined</Table.Th>
                <Table.Th>Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(members.data ?? []).map((m) => {
                const self = m.user_id === me.id;
                const canRemove = !self && m.role !== "owner" && (isOwner || (isAdmin && m.role === "member"));
                return (
                  <Table.Tr key={m.user_id}>
                    <Table.Td>{m.label}</Table.Td>
                    <Table.Td>
                      {isOwner && m.role !== "owner" ? (
                        <Select
                          aria-label={`Role of ${m.label}`}
                          data={["admin", "member"]}
                          value={m.role}
                          onChange={(role) => changeRole(m, role)}
                          allowDeselect={false}
                          w={130}
                        />
                      ) : (
                        <Badge variant="light" color={m.role === "owner" ? "grape" : m.role === "admin" ? "blue" : "gray"}>
                          {m.role}
                        </Badge>
                      )}
                    </Table.Td>
                    <Table.Td>{formatTime(m.joined_at)}</Table.Td>
                    <Table.Td>
                      <Group gap="xs">
                        {canRemove && (
                          <ConfirmButton
                            label="Remove"
                            aria-label={`Remove ${m.label}`}
                            title="Remove member"
                            message={`${m.label} leaves the workspace: their permissions are deleted, their agents disabled, their numbers return to the pool.`}
                            confirmLabel="Remove"
                            onConfirm={async () => {
                              must(await supabase.rpc("remove_workspace_member", { p_workspace_id: workspace.id, p_user_id: m.user_id }));
                              await members.reload();
                            }}
                          />
                        )}
                        {isOwner && !self && (
                          <ConfirmButton
                            label="Make owner"
                            color="grape"
                            aria-label={`Transfer ownership to ${m.label}`}
                            title="Transfer ownership"
                            message={`${m.label} becomes the owner; you stay as an admin. Only the new owner can undo this.`}
                            confirmLabel="Transfer ownership"
                            onConfirm={async () => {
                              must(await supabase.rpc("transfer_workspace_ownership", { p_workspace_id: workspace.id, p_new_owner_id: m.user_id }));
                              await Promise.all([members.reload(), workspaces.reload()]);
                            }}
                          />
                        )}
                        {self && m.role !== "owner" && (
                          <ConfirmButton
                            label="Leave"
                            title="Leave workspace"
                            message={`You leave "${workspace.name}": your permissions there end and your agents there are disabled.`}
                            confirmLabel="Leave"
                            onConfirm={async () => {
                              must(await supabase.rpc("leave_workspace", { p_workspace_id: workspace.id }));
                              await workspaces.reload();
                              navigate("/");
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
      </Card>

      {isAdmin && (
        <>
          <InviteForm
            workspaceId={workspace.id}
            canInviteAdmins={isOwner}
            onIssued={(i) => {
              setIssued(i);
              void invitations.reload();
            }}
          />
          <Card withBorder>
            <Title order={3} size="h4" mb="xs">
              Pending invitations
            </Title>
            <ErrorAlert error={invitations.error} />
            {invitations.data?.length === 0 ? (
              <Empty>No pending invitations.</Empty>
            ) : (
              <Table.ScrollContainer minWidth={520}>
                <Table>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>E-mail</Table.Th>
                      <Table.Th>Role</Table.Th>
                      <Table.Th>Expires</Table.Th>
                      <Table.Th>Actions</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {(invitations.data ?? []).map((i) => (
                      <Table.Tr key={i.id}>
                        <Table.Td>{i.email}</Table.Td>
                        <Table.Td>{i.role}</Table.Td>
                        <Table.Td>{formatTime(i.expires_at)}</Table.Td>
                        <Table.Td>
                          <ConfirmButton
                            label="Revoke"
                            aria-label={`Revoke the invitation to ${i.email}`}
                            title="Revoke invitation"
                            message={`The invitation to ${i.email} stops working.`}
                            confirmLabel="Revoke"
                            onConfirm={async () => {
                              must(await supabase.rpc("revoke_workspace_invitation", { p_invitation_id: i.id }));
                              await reloadAll();
                            }}
                          />
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )}
          </Card>
        </>
      )}

      <Modal opened={!!issued} onClose={() => setIssued(null)} title="Invitation created" centered size="lg">
        {issued && (
          <Stack>
            <Text size="sm">
              Send this token to <b>{issued.email}</b>. They sign in with that address and paste it under "Join a workspace". It is shown
              only now and expires {formatTime(issued.expires_at)}.
            </Text>
            <CopyField value={issued.token} label="invitation token" />
            <Group justify="flex-end">
              <Button onClick={() => setIssued(null)}>Done</Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}

function InviteForm({ workspaceId, canInviteAdmins, onIssued }: { workspaceId: string; canInviteAdmins: boolean; onIssued: (i: Issued) => void }) {
  const supabase = useSupabase();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<string>("member");
  const action = useAction();
  const [, { close }] = useDisclosure();
  return (
    <Card withBorder>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action
            .run(async () => must(await supabase.rpc("invite_workspace_member", { p_workspace_id: workspaceId, p_email: email.trim(), p_role: role })) as unknown as Issued)
            .then((issued) => {
              if (!issued) return;
              setEmail("");
              close();
              onIssued(issued);
            });
        }}
      >
        <Stack gap="sm">
          <Title order={3} size="h4">
            Invite someone
          </Title>
          <Group align="flex-end" wrap="wrap">
            <TextInput label="E-mail" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} style={{ flex: 1, minWidth: 220 }} />
            <Select
              label="Role"
              data={canInviteAdmins ? ["member", "admin"] : ["member"]}
              value={role}
              onChange={(v) => setRole(v ?? "member")}
              allowDeselect={false}
              w={140}
            />
            <Button type="submit" loading={action.busy}>
              Invite
            </Button>
          </Group>
          <ErrorAlert error={action.error} title="Could not invite" />
        </Stack>
      </form>
    </Card>
  );
}
