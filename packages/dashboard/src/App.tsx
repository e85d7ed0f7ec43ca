/** Routes: sign-in and sign-up in the open; everything else under a workspace. */
import { Center, Loader } from "@mantine/core";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "./Layout.tsx";
import { AuthProvider, useAuth } from "./lib/auth.tsx";
import { useWorkspaces, WorkspacesProvider } from "./lib/workspace.tsx";
import { ActivityPage, OperationPage } from "./pages/Activity.tsx";
import { AgentPage, AgentsPage } from "./pages/Agents.tsx";
import { AuditPage } from "./pages/Audit.tsx";
import { ConnectionPage, ConnectionsPage } from "./pages/Connections.tsx";
import { MembersPage } from "./pages/Members.tsx";
import { NumbersPage } from "./pages/Numbers.tsx";
import { OverviewPage } from "./pages/Overview.tsx";
import { RoutesPage } from "./pages/Routes.tsx";
import { SignInPage } from "./pages/SignIn.tsx";
import { UsagePage } from "./pages/Usage.tsx";

function Loading() {
  return (
    <Center h="60vh">
      <Loader aria-label="Loading" />
    </Center>
  );
}

function RequireSession({ children }: { children: React.ReactNode }) {
  const { session, ready } = useAuth();
  const location = useLocation();
  if (!ready) return <Loading />;
  if (!session) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;
  return <WorkspacesProvider>{children}</WorkspacesProvider>;
}

/** "/" goes to the personal workspace (listed first). */
function Home() {
  const workspaces = useWorkspaces();
  if (workspaces.loading && !workspaces.data) return <Loading />;
  const first = workspaces.data?.[0];
  if (!first) return <Loading />;
  return <Navigate to={`/w/${first.id}/overview`} replace />;
}

export function App() {
  return (
    <AuthProvider>
      <BrowserRouter>
        <Routes>
          <Route path="/sign-in" element={<SignInPage mode="sign-in" />} />
          <Route path="/sign-up" element={<SignInPage mode="sign-up" />} />
          <Route path="/" element={<RequireSession><Home /></RequireSession>} />
          <Route path="/w/:workspaceId" element={<RequireSession><Layout /></RequireSession>}>
            <Route index element={<Navigate to="overview" replace />} />
            <Route path="overview" element={<OverviewPage />} />
            <Route path="agents" element={<AgentsPage />} />
            <Route path="agents/:agentId" element={<AgentPage />} />
            <Route path="connections" element={<ConnectionsPage />} />
            <Route path="connections/:connectionId" element={<ConnectionPage />} />
            <Route path="numbers" element={<NumbersPage />} />
            <Route path="routes" element={<RoutesPage />} />
            <Route path="members" element={<MembersPage />} />
            <Route path="activity" element={<ActivityPage />} />
            <Route path="activity/:operationId" element={<OperationPage />} />
            <Route path="usage" element={<UsagePage />} />
            <Route path="audit" element={<AuditPage />} />
          </Route>
          <Route path="*" element={<Navigate to="/" replace />} />
        </Routes>
      </BrowserRouter>
    </AuthProvider>
  );
}
