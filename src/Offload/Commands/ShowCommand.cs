using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ShowCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var json = Common.JsonOption();
        var command = new Command("show", "A task's report: status and reason, summary, files changed, commands and the last test run, tokens, cost, time, attempts") { id, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var report = await client.GetAsync<TaskDetails>($"v1/tasks/{parse.GetValue(id)}/details", ct);
            var question = report.Task.Status == OffloadTaskStatus.NeedsInput
                ? (await client.GetAsync<PendingPermissionResponse>($"v1/tasks/{parse.GetValue(id)}/permission", ct)).Pending
                : null;
            if (parse.GetValue(json))
            {
                var node = JsonSerializer.SerializeToNode(report.Task, CliJson.Info<TaskInfo>())!.AsObject();
                node["files"] = JsonSerializer.SerializeToNode(report.Files, CliJson.Info<IReadOnlyList<ChangedFile>>());
                node["commands"] = JsonSerializer.SerializeToNode(report.Commands, CliJson.Info<IReadOnlyList<CommandRun>>());
                node["attempts"] = JsonSerializer.SerializeToNode(report.Attempts, CliJson.Info<IReadOnlyList<AttemptInfo>>());
                node["merges"] = JsonSerializer.SerializeToNode(report.Merges, CliJson.Info<IReadOnlyList<MergeRecord>>());
                node["runSeconds"] = report.RunSeconds;
                node["restores"] = JsonSerializer.SerializeToNode(report.Restores ?? [], CliJson.Info<IReadOnlyList<WorktreeRestoreRecord>>());
                node["compactions"] = JsonSerializer.SerializeToNode(report.Compactions ?? [], CliJson.Info<IReadOnlyList<CompactionRecord>>());
                node["planItems"] = JsonSerializer.SerializeToNode(report.Plan ?? [], CliJson.Info<IReadOnlyList<PlanItem>>());
                node["proposedPlan"] = report.ProposedPlan;
                node["approvedPlan"] = report.ApprovedPlan;
                node["approvedPrompts"] = JsonSerializer.SerializeToNode(report.ApprovedPrompts ?? [], CliJson.Info<IReadOnlyList<AllowedPrompt>>());
                node["subagents"] = JsonSerializer.SerializeToNode(report.Subagents ?? [], CliJson.Info<IReadOnlyList<SubagentInfo>>());
                node["checks"] = JsonSerializer.SerializeToNode(report.Checks ?? [], CliJson.Info<IReadOnlyList<CheckRan>>());
                if (question is not null)
                {
                    node["pendingPermission"] = JsonSerializer.SerializeToNode(question, CliJson.Info<PermissionRequested>());
                }

                Output.Json(node); // the task's fields at the top level, as scripts expect, plus the report
                return ExitCodes.Ok;
            }

            Print(report);
            if (question is { Tool: "ExitPlanMode" })
            {
                Console.Out.WriteLine();
                Console.Out.WriteLine(Output.Paint("waiting for approval of the plan", "1;33"));
                Console.Out.WriteLine(Indent(report.ProposedPlan ?? "(the plan file is empty)"));
                if (Agent.Tools.ExitPlanModeTool.AllowedPrompts(question.Input) is { } asked)
                {
                    Console.Out.WriteLine($"  it asks for: {string.Join(", ", asked)} (recorded with the approval; they allow nothing by themselves)");
                }

                Console.Out.WriteLine($"  next: offload approve {report.Task.Id} (it goes on, and may now write and run commands) · offload reply {report.Task.Id} \"…\" (back to planning)");
            }
            else if (question is not null)
            {
                Console.Out.WriteLine();
                Console.Out.WriteLine(Output.Paint("waiting for approval", "1;33"));
                Console.Out.WriteLine($"  {question.Tool} {question.Input.GetRawText()}");
                Console.Out.WriteLine($"  asked because: {question.Rule}");
                Console.Out.WriteLine($"  next: offload approve {report.Task.Id} [--always] · offload deny {report.Task.Id} --reason \"…\"");
            }
            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    private static void Print(TaskDetails report)
    {
        var t = report.Task;
        var w = Console.Out;
        w.WriteLine(Output.Paint($"task {t.Id} · {t.Title}", "1"));
        w.WriteLine($"status    {Output.Status(t.Status)}{(t.Error is null ? "" : " · " + t.Error)}");
        if (report.Checks is [.., var check])
        {
            w.WriteLine($"check     {Output.Paint(check.Passed ? "passed" : "FAILED", check.Passed ? "32" : "31;1")} · `{Output.OneLine(check.Command, 80)}` "
                + (check.ExitCode is { } code ? $"exited {code.ToString(CultureInfo.InvariantCulture)}" : "did not finish")
                + $" · try {check.Try} of {t.CheckTries?.ToString(CultureInfo.InvariantCulture) ?? "?"} · {Output.Duration(TimeSpan.FromMilliseconds(check.DurationMs))}");
            if (!check.Passed)
            {
                foreach (var line in check.OutputTail.TrimEnd().Split('\n').TakeLast(8))
                {
                    w.WriteLine(Output.Paint("          │ " + Output.OneLine(line, 100), "2"));
                }
            }
        }
        else if (t.Check is { } pending)
        {
            w.WriteLine($"check     `{Output.OneLine(pending, 80)}` · not run yet (it runs after the agent's final answer)");
        }

        if (t.Group is not null || t.AgainOf is not null || t.Tags.Count > 0)
        {
            var parts = new List<string>();
            if (t.Group is { } g)
            {
                parts.Add($"group g{g} (`offload compare g{g}`)");
            }

            if (t.AgainOf is { } of)
            {
                parts.Add($"again of task {of} (`offload compare {of}`)");
            }

            if (t.Tags.Count > 0)
            {
                parts.Add("tags " + string.Join(", ", t.Tags));
            }

            w.WriteLine($"runs      {string.Join(" · ", parts)}");
        }

        var lastTest = report.Commands.LastOrDefault(c => c.IsTest);
        if (lastTest is not null)
        {
            var passed = lastTest.ExitCode == 0 && !lastTest.IsError;
            w.WriteLine($"tests     {Output.Paint(passed ? "passed" : "FAILED", passed ? "32" : "31;1")} · `{Output.OneLine(lastTest.Command, 80)}` exited {lastTest.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "?"} (turn {lastTest.Turn}, the last test run)");
        }

        foreach (var m in report.Merges)
        {
            w.WriteLine($"{(m.Mode == "apply" ? "applied" : "merged"),-9} {(m.Mode == "apply" ? "to the working tree of " + m.Into : $"into {m.Into} ({m.Mode})" + (m.Commit is null ? "" : " as " + m.Commit[..10]))} · {m.At.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        }

        w.WriteLine($"model     {t.Model} ({t.Engine} engine)");
        w.WriteLine($"branch    {t.Branch} (from {t.BaseRef} @ {t.BaseCommit[..Math.Min(10, t.BaseCommit.Length)]})");
        w.WriteLine($"worktree  {t.Worktree}{(t.Discarded ? " (discarded)" : "")}");
        foreach (var r in report.Restores ?? [])
        {
            w.WriteLine($"          {Output.Restored(r.BranchCommit, r.Turn, r.Checkpoint)} · {r.At.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        }

        w.WriteLine($"usage     {t.Turns} turns · {Output.Tokens(t.Usage.InputTokens)} in / {Output.Tokens(t.Usage.OutputTokens)} out · {Output.Cost(t.Usage.CostUsd)}");
        if (report.Compactions is [.., var lastCompaction] compactions)
        {
            var summaries = compactions.Count(c => c.Summarised);
            w.WriteLine($"context   {compactions.Count} compaction{(compactions.Count == 1 ? "" : "s")} ({summaries} with a summary) · last at turn {lastCompaction.Turn}: {Output.Tokens(lastCompaction.TokensBefore)} → {Output.Tokens(lastCompaction.TokensAfter)} of {Output.Tokens(lastCompaction.Window)} tokens");
        }

        var started = t.StartedAt ?? t.CreatedAt;
        var queued = started - t.CreatedAt;
        var ran = TimeSpan.FromSeconds(report.RunSeconds);
        w.WriteLine($"time      queued {Output.Duration(queued)} · ran {Output.Duration(ran)}{(t.FinishedAt is null ? " so far" : "")} · created {t.CreatedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        if (report.Attempts.Count > 1)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint($"attempts ({report.Attempts.Count})", "1"));
            foreach (var a in report.Attempts)
            {
                var status = a.Status is { } s ? Output.Status(s) : "";
                w.WriteLine($"  #{a.Number} {status}{(a.Reason is null ? "" : " · " + Output.OneLine(a.Reason, 60))} · {a.Model} · {a.Turns} turns · {Output.Cost(a.CostUsd)} · {a.StartedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}{(a.SavedRef is null ? "" : " · kept on " + a.SavedRef)}");
            }
        }
        if (report.Subagents is { Count: > 0 } subagents)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint($"subagents ({subagents.Count})", "1"));
            foreach (var a in subagents)
            {
                w.WriteLine($"  {a.Type} · {Output.OneLine(a.Description, 40)} · {a.Turns} turns · {Output.Tokens(a.InputTokens)} in / {Output.Tokens(a.OutputTokens)} out · {Output.Cost(a.CostUsd)}{(a.Result is null ? " · running" : "")}");
            }
        }

        w.WriteLine();
        w.WriteLine(Output.Paint("prompt", "1"));
        w.WriteLine(Indent(t.Prompt));
        if (t.Summary is { Length: > 0 })
        {
            w.WriteLine();
            w.WriteLine(Output.Paint("summary", "1"));
            w.WriteLine(Indent(t.Summary));
        }

        if (report.ApprovedPlan is { } approved)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint("approved plan", "1"));
            w.WriteLine(Indent(approved));
            if (report.ApprovedPrompts is { Count: > 0 } prompts)
            {
                w.WriteLine(Output.Paint("  allowed prompts, as the agent asked (recorded; they allow nothing by themselves: the permission rules still decide)", "2"));
                foreach (var prompt in prompts)
                {
                    w.WriteLine($"    {prompt}");
                }
            }
        }

        if (report.Plan is { Count: > 0 } plan)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint($"plan ({plan.Count(i => i.Status == "completed")}/{plan.Count})", "1"));
            foreach (var item in plan)
            {
                w.WriteLine($"  {Output.PlanMark(item.Status)} #{item.Id} {item.Subject}{(item.Status == "in_progress" && item.ActiveForm is { } active ? Output.Paint($" ({active})", "2") : "")}  {Output.Paint(item.Status, "2")}");
            }
        }

        if (report.Files.Count > 0)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint($"files changed ({report.Files.Count})", "1"));
            foreach (var f in report.Files)
            {
                w.WriteLine($"  {f.Change,-2} {f.Path}  {Output.Paint("+" + f.Added, "32")} {Output.Paint("-" + f.Deleted, "31")}");
            }
        }

        if (report.Commands.Count > 0)
        {
            w.WriteLine();
            w.WriteLine(Output.Paint($"commands ({report.Commands.Count})", "1"));
            foreach (var c in report.Commands)
            {
                var exit = $"exit {c.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "?"}".PadRight(8);
                var line = $"  {Output.Paint(exit, c.ExitCode == 0 && !c.IsError ? "2" : "31")} {Output.OneLine(c.Command, 100)}";
                w.WriteLine(ReferenceEquals(c, lastTest) ? Output.Paint(line, "1") + "   ← last test run" : line);
            }
        }
    }

    private static string Indent(string text) => string.Join('\n', text.TrimEnd().Split('\n').Select(l => "  " + l));
}
