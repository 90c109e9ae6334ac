using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Offload.Protocol;

namespace Offload.Cli.Mcp;

/// <summary>
/// Offload's commands as MCP tools, for an agent that hands long work to Offload and collects it later. Each call goes to
/// the daemon through <see cref="DaemonClient"/>, as the CLI's commands do (the daemon is started when needed). The set
/// knows nothing of the transport: <see cref="OffloadMcpServer"/> serves it over stdio (<c>offload mcp</c>) and can put
/// the same handlers on Streamable HTTP. A failure (an unknown id, an empty prompt, a task in the wrong state, a daemon
/// that cannot start) is a tool result with <c>isError</c> and the CLI's message and hint, never an exception out of
/// the server.
/// </summary>
public sealed class OffloadTools(DaemonClient client, string defaultRepo)
{
    public const string Run = "offload_run";
    public const string Status = "offload_status";
    public const string Logs = "offload_logs";
    public const string Wait = "offload_wait";
    public const string Reply = "offload_reply";
    public const string Approve = "offload_approve";
    public const string Deny = "offload_deny";
    public const string Cancel = "offload_cancel";
    public const string Diff = "offload_diff";
    public const string Merge = "offload_merge";
    public const string List = "offload_list";
    public const string Compare = "offload_compare";

    /// <summary>The longest one <c>offload_wait</c> call blocks, and its default.</summary>
    public const int MaxWaitSeconds = 3600;
    public const int DefaultWaitSeconds = 120;

    private const int DefaultLogEvents = 100;
    private const int MaxLogEvents = 500;

    public DaemonClient Client => client;

    /// <summary>The folder <c>offload_run</c> uses when it is given no <c>repo</c>: the server's working directory.</summary>
    public string DefaultRepo => defaultRepo;

    public static IReadOnlyList<Tool> Tools { get; } =
    [
        Define(Run, "Run a coding task in the background",
            "Hand a coding task to a background agent and return at once with its task id. Offload runs the agent in its own git worktree " +
            "and branch (offload/N-…) of the repository, so your working tree is never touched; the task goes on while you do other work. " +
            "Use it for long or separable work: a refactor, a bug hunt, a test suite to fix, a second opinion. Then follow it with " +
            "offload_wait (block until it ends, with its summary), offload_status or offload_logs; review with offload_diff; bring it in with " +
            "offload_merge. Give a `check` (a command such as \"npm test\") when done is testable: the task only succeeds once it passes.",
            """
            {"type":"object","properties":{
              "prompt":{"type":"string","description":"What the agent should do, as you would brief a colleague: the goal, where to look, what done means."},
              "repo":{"type":"string","description":"The git repository to work in (a path; relative paths are from the server's working directory). Default: the server's working directory."},
              "model":{"type":"string","description":"provider:model, e.g. anthropic:claude-opus-4-8, openai:gpt-5, ollama:qwen3-coder, sim:demo. Default: the user's configured model."},
              "engine":{"type":"string","description":"The agent that runs the task: builtin (Offload's own, the default) or claude (the Claude Code CLI)."},
              "base":{"type":"string","description":"The commit or branch to start from. Default: the repository's current HEAD."},
              "name":{"type":"string","description":"A short title for the task. Default: the prompt's first line."},
              "check":{"type":"string","description":"A shell command that defines done, e.g. \"npm test\": it runs after the agent's final answer; a failure goes back to the agent, and the task succeeds only once it passes."},
              "checkTries":{"type":"integer","minimum":1,"description":"How many times the check may run before the task ends failed (default 3)."},
              "maxTurns":{"type":"integer","minimum":1,"description":"Stop after this many model turns (status limited)."},
              "maxCostUsd":{"type":"number","exclusiveMinimum":0,"description":"Stop once the task has cost this many US dollars."},
              "timeout":{"type":["string","number"],"description":"Stop after this much wall-clock time: seconds, or text like 90s, 20m, 2h."},
              "planFirst":{"type":"boolean","description":"Plan mode (builtin engine): the agent only reads, proposes a plan and waits for offload_approve before it changes anything."},
              "tags":{"type":"array","items":{"type":"string"},"description":"Labels for the task, to find it later with offload_list or offload_compare."}
            },"required":["prompt"]}
            """),
        Define(Status, "A task's status and report",
            "A task's report: status (queued, running, needs_input, succeeded, failed, limited, cancelled) and why, its summary once it ended, " +
            "files changed, turns, tokens, cost, the last check, and, when it is waiting (needs_input), the tool call or plan it waits on: " +
            "answer with offload_approve or offload_deny.",
            """{"type":"object","properties":{"id":{"type":"integer","minimum":1,"description":"The task number offload_run returned."}},"required":["id"]}"""),
        Define(Logs, "A task's journal, from a sequence number",
            "A task's journal as lines: what the agent said and thought, each tool call and its result, status changes. Each line starts " +
            "with the event's sequence number (#N); pass the last one as `after` next time to get only what is new.",
            """
            {"type":"object","properties":{
              "id":{"type":"integer","minimum":1,"description":"The task number."},
              "after":{"type":"integer","minimum":0,"description":"Only events after this sequence number (default 0: from the start)."},
              "limit":{"type":"integer","minimum":1,"maximum":500,"description":"At most this many events (default 100)."}
            },"required":["id"]}
            """),
        Define(Wait, "Wait for a task to end",
            "Block until the task ends (succeeded, failed, limited, cancelled) or stops to wait for an approval (needs_input), or until " +
            "`timeoutSeconds` pass; then return its status and, once it ended, its summary. A task still running at the timeout is not an " +
            "error: call offload_wait again, or do other work meanwhile.",
            $$"""
            {"type":"object","properties":{
              "id":{"type":"integer","minimum":1,"description":"The task number."},
              "timeoutSeconds":{"type":"integer","minimum":1,"maximum":{{MaxWaitSeconds}},"description":"The longest to wait, in seconds (default {{DefaultWaitSeconds}}, at most {{MaxWaitSeconds}})."}
            },"required":["id"]}
            """),
        Define(Reply, "Continue a finished task",
            "Send a finished task a new message (\"also cover the edge case\", \"the test still fails: …\"): the same agent goes on with the " +
            "same conversation, worktree and branch. The task must have ended; its new run is followed like any other.",
            """
            {"type":"object","properties":{
              "id":{"type":"integer","minimum":1,"description":"The task number."},
              "message":{"type":"string","description":"What the agent should do next."},
              "maxTurns":{"type":"integer","minimum":1,"description":"The task's new turn limit (all turns so far count)."},
              "maxCostUsd":{"type":"number","exclusiveMinimum":0,"description":"The task's new cost limit in US dollars (all spending so far counts)."},
              "timeout":{"type":["string","number"],"description":"The wall-clock limit of this run: seconds, or text like 20m."}
            },"required":["id","message"]}
            """),
        Define(Approve, "Approve what a waiting task asked",
            "Let a task that waits for permission (status needs_input) run the tool call it asked about, or, in plan mode, accept its plan. " +
            "offload_status shows what it asked.",
            """
            {"type":"object","properties":{
              "id":{"type":"integer","minimum":1,"description":"The task number."},
              "always":{"type":"boolean","description":"Also allow this exact call for the rest of the task."}
            },"required":["id"]}
            """),
        Define(Deny, "Refuse what a waiting task asked",
            "Refuse the tool call a task waiting for permission (needs_input) asked about; the agent is told `reason` and carries on without it.",
            """
            {"type":"object","properties":{
              "id":{"type":"integer","minimum":1,"description":"The task number."},
              "reason":{"type":"string","description":"Why, for the agent."}
            },"required":["id"]}
            """),
        Define(Cancel, "Stop a task",
            "Stop a queued or running task (status cancelled). Its branch keeps what it did so far.",
            """{"type":"object","properties":{"id":{"type":"integer","minimum":1,"description":"The task number."}},"required":["id"]}"""),
        Define(Diff, "A task's changes",
            "The unified diff of the task's branch against the commit it started from: what offload_merge would bring in.",
            """{"type":"object","properties":{"id":{"type":"integer","minimum":1,"description":"The task number."}},"required":["id"]}"""),
        Define(Merge, "Merge a task's branch",
            "Bring a finished task's branch into the repository's current branch, as one squashed commit (the task's title and summary " +
            "as its message) unless squash is false. Refuses, changing nothing, when the merge conflicts or uncommitted changes touch " +
            "the task's files.",
            """
            {"type":"object","properties":{
              "id":{"type":"integer","minimum":1,"description":"The task number."},
              "squash":{"type":"boolean","description":"One squashed commit (default true); false makes a merge commit with both parents."}
            },"required":["id"]}
            """),
        Define(List, "List tasks",
            "Tasks, newest first: id, status, title, model, turns, cost, age. Filter by tag, text or repository.",
            """
            {"type":"object","properties":{
              "limit":{"type":"integer","minimum":1,"maximum":1000,"description":"How many tasks (default 20)."},
              "all":{"type":"boolean","description":"Include discarded tasks."},
              "tag":{"type":"string","description":"Only tasks with this tag."},
              "grep":{"type":"string","description":"Only tasks whose prompt or title contains this text (any case)."},
              "repo":{"type":"string","description":"Only tasks of this repository (a path)."}
            }}
            """),
        Define(Compare, "Compare tasks side by side",
            "Tasks side by side: prompt, model, engine, status, check, turns, tokens, cost, time, retries, approvals, files changed and " +
            "test commands. Give `ids` (two or more tasks, or one task and the tasks that ran it again), a best-of-N `group`, or a `tag`.",
            """
            {"type":"object","properties":{
              "ids":{"type":"array","items":{"type":"integer","minimum":1},"description":"Task numbers."},
              "group":{"type":"integer","minimum":1,"description":"A best-of-N group's number (the N of gN)."},
              "tag":{"type":"string","description":"Compare the tasks with this tag (the newest 20)."}
            }}
            """),
    ];

    private static Tool Define(string name, string title, string description, string schema) => new()
    {
        Name = name,
        Title = title,
        Description = description,
        InputSchema = JsonElement.Parse(schema),
        Annotations = new ToolAnnotations
        {
            ReadOnlyHint = name is Status or Logs or Wait or Diff or List or Compare,
            DestructiveHint = name is Cancel or Merge ? true : null,
            OpenWorldHint = false,
        },
    };

    /// <summary>
    /// Calls one tool. <paramref name="server"/> and <paramref name="progress"/> let a long call (<c>offload_wait</c>)
    /// report progress to a client that asked for it; both may be null.
    /// </summary>
    public async Task<CallToolResult> CallAsync(string name, IDictionary<string, JsonElement>? arguments, McpServer? server = null,
        ProgressToken? progress = null, CancellationToken cancellationToken = default)
    {
        if (!Tools.Any(t => t.Name == name))
        {
            throw new McpProtocolException($"there is no tool '{name}'; the tools are {string.Join(", ", Tools.Select(t => t.Name))}", McpErrorCode.InvalidParams);
        }

        var args = new ToolArguments(name, arguments);
        try
        {
            await client.EnsureDaemonAsync(cancellationToken);
            return name switch
            {
                Run => Text(RunLine(await RunAsync(args, cancellationToken))),
                Status => await StatusAsync(args.TaskId(), cancellationToken),
                Logs => await LogsAsync(args, cancellationToken),
                Wait => await WaitAsync(args, server, progress, cancellationToken),
                Reply => await ReplyAsync(args, cancellationToken),
                Approve => Answered(await client.PostAsync<PermissionAnswerResponse>($"v1/tasks/{args.TaskId()}/approve", new ApproveRequest(args.Bool("always")), cancellationToken)),
                Deny => Answered(await client.PostAsync<PermissionAnswerResponse>($"v1/tasks/{args.TaskId()}/deny", new DenyRequest(args.String("reason")), cancellationToken)),
                Cancel => TaskResult(await client.PostAsync<TaskInfo>($"v1/tasks/{args.TaskId()}/cancel", null, cancellationToken), "cancelled"),
                Diff => await DiffAsync(args.TaskId(), cancellationToken),
                Merge => Merged(await client.PostAsync<MergeResponse>($"v1/tasks/{args.TaskId()}/merge", new MergeRequest(args.BoolOrNull("squash") ?? true), cancellationToken)),
                List => await ListAsync(args, cancellationToken),
                _ => await CompareAsync(args, cancellationToken),
            };
        }
        catch (CliException e)
        {
            return Error(e.Message, e.Hint);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw; // the client cancelled the call: the SDK answers it
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return Error($"lost the daemon during {name}: {e.Message}", $"call {name} again; `offload daemon status` and its log ({client.Paths.DaemonLog}) say more");
        }
        catch (Exception e)
        {
            return Error($"unexpected error in {name}: {e.Message}", $"call {name} again; if it happens again, `offload doctor` checks the set-up and the daemon's log ({client.Paths.DaemonLog}) says more");
        }
    }

    /// <summary>Creates the task <c>offload_run</c> describes (also used by the MCP Tasks form of the call).</summary>
    internal async Task<TaskInfo> RunAsync(ToolArguments args, CancellationToken cancellationToken)
    {
        var prompt = args.RequiredString("prompt", "what the agent should do, e.g. \"fix the failing test in tests/auth\"");
        if (prompt.Contains('\0', StringComparison.Ordinal))
        {
            throw new CliException(ExitCodes.BadInput, "the prompt contains a NUL byte, so it is not text", "give plain text");
        }

        var repo = Path.GetFullPath(args.String("repo") ?? ".", defaultRepo);
        if (!Directory.Exists(repo))
        {
            throw new CliException(ExitCodes.Repository, $"the repository folder {repo} does not exist",
                $"give `repo` as the path of a git repository (absolute, or relative to {defaultRepo})");
        }

        var request = new CreateTaskRequest(prompt, repo, args.String("model"), args.String("engine"), args.String("base"), args.String("name"),
            args.Int("maxTurns"), args.Decimal("maxCostUsd"), args.Seconds("timeout"), args.Bool("planFirst"))
        {
            Check = args.String("check"),
            CheckTries = args.Int("checkTries"),
            Tags = args.Strings("tags") is { Count: > 0 } tags ? tags : null,
        };
        return await client.PostAsync<TaskInfo>("v1/tasks", request, cancellationToken);
    }

    private static string RunLine(TaskInfo task) =>
        $"task {task.Id} {task.Status.ToWire()} · branch {task.Branch} · worktree {task.Worktree}" + (task.Check is { } c ? $" · check `{c}`" : "") + "\n" +
        $"It runs in the background. Next: offload_wait with id {task.Id} blocks until it ends and gives its summary; offload_status and " +
        $"offload_logs look in meanwhile.\n" + Json(task);

    private async Task<CallToolResult> StatusAsync(long id, CancellationToken cancellationToken)
    {
        var report = await client.GetAsync<TaskDetails>($"v1/tasks/{id}/details", cancellationToken);
        var question = report.Task.Status == OffloadTaskStatus.NeedsInput
            ? (await client.GetAsync<PendingPermissionResponse>($"v1/tasks/{id}/permission", cancellationToken)).Pending
            : null;
        var node = JsonSerializer.SerializeToNode(report.Task, CliJson.Info<TaskInfo>())!.AsObject();
        node["files"] = JsonSerializer.SerializeToNode(report.Files, CliJson.Info<IReadOnlyList<ChangedFile>>());
        node["runSeconds"] = report.RunSeconds;
        if (report.Checks is [.., var check])
        {
            node["lastCheck"] = new JsonObject { ["command"] = check.Command, ["passed"] = check.Passed, ["exitCode"] = check.ExitCode, ["try"] = check.Try, ["outputTail"] = check.OutputTail };
        }

        if (report.ProposedPlan is { } plan && question is { Tool: "ExitPlanMode" })
        {
            node["proposedPlan"] = plan;
        }

        if (question is not null)
        {
            node["pendingPermission"] = JsonSerializer.SerializeToNode(question, CliJson.Info<PermissionRequested>());
        }

        var t = report.Task;
        var line = $"task {t.Id} {t.Status.ToWire()}" + (t.Error is null ? "" : $" · {t.Error}") + $" · {t.Turns} turns · {Output.Cost(t.Usage.CostUsd)} · {report.Files.Count} files changed";
        if (question is not null)
        {
            line += $"\nIt waits for an answer about {question.Tool} {Output.OneLine(Commands.ApproveCommand.Describe(question.Input), 200)}" +
                    (question.Rule is null ? "" : $" (asked because: {question.Rule})") + $": offload_approve or offload_deny with id {t.Id}.";
        }

        return Text(line + "\n" + node.ToJsonString(JsonOptions));
    }

    private async Task<CallToolResult> LogsAsync(ToolArguments args, CancellationToken cancellationToken)
    {
        var id = args.TaskId();
        var after = args.Long("after", min: 0) ?? 0;
        var limit = Math.Min(args.Int("limit") ?? DefaultLogEvents, MaxLogEvents);
        var text = await client.GetTextAsync($"v1/tasks/{id}/events?after={after}", cancellationToken);
        var events = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize(l, CliJson.Info<AgentEvent>())!).ToList();
        var shown = new StringBuilder();
        var subagents = new Output.SubagentLabels();
        var last = after;
        foreach (var e in events.Take(limit))
        {
            last = e.Seq;
            if (Output.LogLine(e, thinking: false, subagents.Of(e)) is { } line)
            {
                shown.Append('#').Append(e.Seq.ToString(CultureInfo.InvariantCulture)).Append(' ').AppendLine(line);
            }
        }

        shown.Append(events.Count > limit
            ? $"({events.Count - limit} more events: call offload_logs with after={last})"
            : events.Count == 0 ? $"no events after #{after} yet" : $"(the end of the journal so far: call offload_logs with after={last} for newer events)");
        return Text(shown.ToString());
    }

    private async Task<CallToolResult> WaitAsync(ToolArguments args, McpServer? server, ProgressToken? progress, CancellationToken cancellationToken)
    {
        var id = args.TaskId();
        var seconds = args.Int("timeoutSeconds") ?? DefaultWaitSeconds;
        if (seconds > MaxWaitSeconds)
        {
            throw new CliException(ExitCodes.BadInput, $"{Wait}: `timeoutSeconds` is at most {MaxWaitSeconds}, not {seconds}", "call offload_wait again after it returns");
        }

        // The journal so far is history (an approval asked and answered earlier, the end of a run before a reply); what
        // comes after its last event is news. The status is read after it, so a change in between is not missed.
        var history = (await client.GetTextAsync($"v1/tasks/{id}/events", cancellationToken)).TrimEnd('\n');
        var last = history[(history.LastIndexOf('\n') + 1)..];
        var seen = last.Length == 0 ? 0 : JsonSerializer.Deserialize(last, CliJson.Info<AgentEvent>())!.Seq;
        var task = (await client.GetAsync<TaskReport>($"v1/tasks/{id}", cancellationToken)).Task;
        if (task.Status.IsFinal() || task.Status == OffloadTaskStatus.NeedsInput && await AsksAsync(id, cancellationToken))
        {
            return await WaitedAsync(task, cancellationToken);
        }

        // Follow the journal: it says when the task ends or stops to ask, and what it does meanwhile (progress).
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        var turns = task.Turns;
        try
        {
            await foreach (var e in client.EventsAsync(id, seen, follow: true, timeout.Token))
            {
                if (e is StatusChanged changed && (changed.To.IsFinal() || changed.To == OffloadTaskStatus.NeedsInput))
                {
                    break;
                }

                if (e is AssistantMessage { Subagent: null } said && said.Turn > turns && server is not null && progress is { } token)
                {
                    turns = said.Turn;
                    await server.NotifyProgressAsync(new ProgressNotificationParams
                    {
                        ProgressToken = token,
                        Progress = new ProgressNotificationValue { Progress = turns, Message = $"task {id}: turn {turns}" },
                    }, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            task = (await client.GetAsync<TaskReport>($"v1/tasks/{id}", cancellationToken)).Task;
            if (!task.Status.IsFinal() && task.Status != OffloadTaskStatus.NeedsInput)
            {
                return Text($"task {id} is still {task.Status.ToWire()} after {seconds} s ({task.Turns} turns, {Output.Cost(task.Usage.CostUsd)} so far). " +
                            $"Call offload_wait again to keep waiting, or offload_logs with id {id} to see what it does.\n" + Json(task));
            }
        }

        return await WaitedAsync((await client.GetAsync<TaskReport>($"v1/tasks/{id}", cancellationToken)).Task, cancellationToken);
    }

    /// <summary>
    /// Whether the task waits on a question. Just after an answer (<c>offload_approve</c> returns as soon as the question
    /// is answered) the task may still say needs_input for a moment, on its way back to running.
    /// </summary>
    private async Task<bool> AsksAsync(long id, CancellationToken cancellationToken) =>
        (await client.GetAsync<PendingPermissionResponse>($"v1/tasks/{id}/permission", cancellationToken)).Pending is not null;

    /// <summary>What <c>offload_wait</c> says of a task that ended or waits for an answer.</summary>
    private async Task<CallToolResult> WaitedAsync(TaskInfo task, CancellationToken cancellationToken)
    {
        if (task.Status == OffloadTaskStatus.NeedsInput)
        {
            return await StatusAsync(task.Id, cancellationToken);
        }

        return Text(Ended(task) + "\n" + Json(task));
    }

    /// <summary>An ended task in a line or two: its status, why, and its summary; what to do next.</summary>
    public static string Ended(TaskInfo task) =>
        $"task {task.Id} {task.Status.ToWire()}" + (task.Error is null ? "" : $" · {task.Error}") +
        $" · {task.Turns} turns · {Output.Cost(task.Usage.CostUsd)} · branch {task.Branch}\n" +
        (task.Summary is { Length: > 0 } summary ? $"summary: {summary}\n" : "") +
        (task.Status == OffloadTaskStatus.Succeeded
            ? $"Next: offload_diff with id {task.Id} to review its changes, offload_merge to bring them in, or offload_reply to ask for more."
            : $"Next: offload_logs with id {task.Id} shows what happened; offload_reply sends it back to work with a new message.");

    private async Task<CallToolResult> ReplyAsync(ToolArguments args, CancellationToken cancellationToken)
    {
        var id = args.TaskId();
        var message = args.RequiredString("message", "what the agent should do next");
        if (message.Contains('\0', StringComparison.Ordinal))
        {
            throw new CliException(ExitCodes.BadInput, "the reply contains a NUL byte, so it is not text", "give plain text");
        }

        var task = await client.PostAsync<TaskInfo>($"v1/tasks/{id}/reply",
            new ReplyRequest(message, args.Int("maxTurns"), args.Decimal("maxCostUsd"), args.Seconds("timeout")), cancellationToken);
        return Text($"task {task.Id} {task.Status.ToWire()} · goes on in branch {task.Branch}. Next: offload_wait with id {task.Id}.\n" + Json(task));
    }

    private async Task<CallToolResult> DiffAsync(long id, CancellationToken cancellationToken)
    {
        var diff = await client.GetTextAsync($"v1/tasks/{id}/diff", cancellationToken);
        return Text(diff.Length == 0 ? $"task {id} has no changes against the commit it started from" : diff);
    }

    private async Task<CallToolResult> ListAsync(ToolArguments args, CancellationToken cancellationToken)
    {
        var query = $"v1/tasks?all={args.Bool("all")}&limit={Math.Min(args.Int("limit") ?? 20, 1000)}";
        foreach (var (name, value) in new[] { ("tag", args.String("tag")), ("grep", args.String("grep")), ("repo", args.String("repo") is { } r ? Path.GetFullPath(r, defaultRepo) : null) })
        {
            if (value is { Length: > 0 })
            {
                query += $"&{name}={Uri.EscapeDataString(value)}";
            }
        }

        var page = await client.GetAsync<Page<TaskInfo>>(query, cancellationToken);
        if (page.Items.Count == 0)
        {
            return Text("no task matches; offload_run starts one");
        }

        var now = DateTimeOffset.UtcNow;
        var lines = page.Items.Select(t =>
            $"{t.Id} {t.Status.ToWire()}{(t.Discarded ? " (discarded)" : "")} · {Output.OneLine(t.Title, 80)} · {t.Model} ({t.Engine}) · {t.Turns} turns · " +
            $"{Output.Cost(t.Usage.CostUsd)} · {Output.Age(t.CreatedAt, now)} ago" + (t.Group is { } g ? $" · group g{g}" : "") +
            (t.Error is { } error && t.Status.IsFinal() ? $" · {Output.OneLine(error, 80)}" : ""));
        return Text("id status · title · model (engine) · turns · cost · age\n" + string.Join('\n', lines));
    }

    private async Task<CallToolResult> CompareAsync(ToolArguments args, CancellationToken cancellationToken)
    {
        var ids = args.Longs("ids");
        var group = args.Long("group");
        var tag = args.String("tag");
        string query;
        if ((ids is { Count: > 0 } ? 1 : 0) + (group is null ? 0 : 1) + (tag is null ? 0 : 1) != 1)
        {
            throw new CliException(ExitCodes.BadInput, $"{Compare} needs exactly one of `ids`, `group` or `tag`",
                "e.g. {\"ids\": [3, 4]}, {\"group\": 2} or {\"tag\": \"refactor\"}");
        }

        if (ids is { Count: > 0 })
        {
            query = "ids=" + string.Join(",", ids.Select(i => i.ToString(CultureInfo.InvariantCulture)));
        }
        else if (group is { } g)
        {
            query = "group=" + g.ToString(CultureInfo.InvariantCulture);
        }
        else
        {
            query = "tag=" + Uri.EscapeDataString(tag!);
        }

        var compared = await client.GetAsync<CompareResponse>("v1/compare?" + query, cancellationToken);
        return Text($"compare {compared.Of}: {compared.Tasks.Count} tasks\n" + JsonSerializer.Serialize(compared, CliJson.Info<CompareResponse>(JsonOptions)));
    }

    private static CallToolResult Answered(PermissionAnswerResponse answer) => Text(
        $"task {answer.TaskId}: {(answer.Allowed ? "approved" : "denied")} {answer.Tool} {Output.OneLine(Commands.ApproveCommand.Describe(answer.Input), 200)}" +
        (answer.Rule is null ? "" : $"; {answer.Rule} is allowed for the rest of the task") + (answer.Reason is null ? "" : $" ({answer.Reason})") +
        $". The task goes on: offload_wait with id {answer.TaskId}.");

    private static CallToolResult Merged(MergeResponse merged) => Text(merged.Commit is null
        ? $"task {merged.Id}: nothing to merge, {merged.Into} already has its changes"
        : $"merged task {merged.Id} into {merged.Into} as {merged.Commit[..Math.Min(10, merged.Commit.Length)]} ({merged.Mode}) · {Commands.MergeCommand.Files(merged.Files)}");

    private static CallToolResult TaskResult(TaskInfo task, string what) => Text($"task {task.Id} {what} ({task.Status.ToWire()})\n" + Json(task));

    /// <summary>JSON for a model to read: quotes and non-ASCII text as they are, not as \u escapes (no HTML page embeds it).</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new(CliJson.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    internal static string Json(TaskInfo task) => JsonSerializer.Serialize(task, CliJson.Info<TaskInfo>(JsonOptions));

    public static CallToolResult Text(string text) => new() { Content = [new TextContentBlock { Text = text }] };

    /// <summary>A tool error as the CLI prints it: what happened, and what to do next.</summary>
    public static CallToolResult Error(string message, string? hint) => new()
    {
        IsError = true,
        Content = [new TextContentBlock { Text = "offload: " + message + (hint is null ? "" : "\n  next: " + hint) }],
    };
}
