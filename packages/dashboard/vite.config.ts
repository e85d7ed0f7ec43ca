/**
 * The dashboard's build. `npm run build -w @switchboard/dashboard` writes dist/; the
 * devstack builds it on `npm start` (when its sources changed) and serves dist/ with a
 * runtime config.json naming the stack's API URL and publishable key.
 */
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Mantine, recharts and supabase-js in one app: a few hundred kB gzipped is expected.
    chunkSizeWarningLimit: 2500,
  },
});
