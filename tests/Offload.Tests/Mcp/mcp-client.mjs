// Drives an MCP server with the official MCP TypeScript client (@modelcontextprotocol/sdk, installed by
// scripts/test-deps.sh into .tools/mcp-sdk). McpClientTests runs it against `offload mcp` and checks what it prints.
//
// Input (stdin, JSON): { "sdk": ".tools/mcp-sdk", "command": "/path/offload", "args": ["mcp"], "cwd": "…", "env": {…},
//                        "steps": [ {"op": "list"} | {"op": "call", "name": "…", "arguments": {…}}
//                                 | {"op": "task", "name": "…", "arguments": {…}} | {"op": "request", "method": "…", "params": {…}} ] }
// Output (stdout): one JSON line per step: {"op", "result"} or {"op", "error": {"code", "message"}}; a "call" step asks
// for progress and gives the notifications/progress that came ("progress"); a "task" step
// gives the messages of the SDK's task stream (taskCreated, taskStatus, result or error) and the
// notifications/tasks/status that came meanwhile. The first line is the server's capabilities and info.
import { createRequire } from 'node:module';
import path from 'node:path';

const input = JSON.parse(await new Promise((resolve, reject) => {
  let text = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', chunk => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
  process.stdin.on('error', reject);
}));

const require = createRequire(path.join(path.resolve(input.sdk), 'package.json'));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { TaskStatusNotificationSchema, CallToolResultSchema } = require('@modelcontextprotocol/sdk/types.js');
const { z } = require('zod');

const transport = new StdioClientTransport({ command: input.command, args: input.args, cwd: input.cwd, env: input.env, stderr: 'inherit' });
const client = new Client({ name: 'offload-tests', version: '1.0.0' }, { capabilities: {} });
const statuses = [];
const ended = s => ['completed', 'failed', 'cancelled'].includes(s.status);
const endings = new Map(); // task id → resolves when the notification that it ended comes
const ending = id => {
  if (!endings.has(id)) {
    let resolve;
    endings.set(id, { promise: new Promise(r => { resolve = r; }), resolve: () => resolve() });
  }
  return endings.get(id);
};
client.setNotificationHandler(TaskStatusNotificationSchema, n => {
  statuses.push(n.params);
  if (ended(n.params)) ending(n.params.taskId).resolve();
});
await client.connect(transport);

const print = value => process.stdout.write(JSON.stringify(value) + '\n');
const failure = e => ({ code: e.code ?? null, message: String(e.message ?? e) });
print({ op: 'connect', result: { capabilities: client.getServerCapabilities(), server: client.getServerVersion(), instructions: client.getInstructions() } });

const options = { timeout: 120000 };
for (const step of input.steps) {
  try {
    if (step.op === 'list') {
      print({ op: 'list', result: await client.listTools() });
    } else if (step.op === 'call') {
      const progress = [];
      const result = await client.callTool({ name: step.name, arguments: step.arguments }, CallToolResultSchema, { ...options, onprogress: p => progress.push(p) });
      print({ op: 'call', name: step.name, result, progress });
    } else if (step.op === 'task') {
      const messages = [];
      for await (const message of client.experimental.tasks.callToolStream({ name: step.name, arguments: step.arguments }, CallToolResultSchema, { ...options, task: {} })) {
        messages.push(message.type === 'error' ? { type: 'error', error: failure(message.error) } : message);
      }
      // The last status notification can come after the result: wait (5 s at most) for the one that says the task ended.
      const id = messages.find(m => m.type === 'taskCreated')?.task.taskId;
      if (id) {
        let timer;
        await Promise.race([ending(id).promise, new Promise(r => { timer = setTimeout(r, 5000); })]);
        clearTimeout(timer);
      }
      print({ op: 'task', name: step.name, result: { messages, notifications: statuses.filter(s => s.taskId === id) } });
    } else if (step.op === 'request') {
      print({ op: 'request', method: step.method, result: await client.request({ method: step.method, params: step.params }, z.looseObject({}), options) });
    } else {
      throw new Error(`unknown step ${step.op}`);
    }
  } catch (e) {
    print({ op: step.op, name: step.name ?? step.method, error: failure(e) });
  }
}

await client.close();
