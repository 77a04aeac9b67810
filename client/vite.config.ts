import { defineConfig } from "vitest/config";

// In development the page is served on :5173 and the API calls go to the session server.
const sessionServer = process.env.SESSION_SERVER_URL ?? "http://127.0.0.1:8081";

export default defineConfig({
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      "/connect": sessionServer,
      "/token": sessionServer,
      "/health": sessionServer,
    },
  },
  build: { outDir: "dist", sourcemap: true, chunkSizeWarningLimit: 1500 },
  test: { environment: "node", include: ["test/**/*.test.ts"] },
});
