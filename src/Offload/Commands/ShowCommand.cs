using System.CommandLine;
using System.Text.Json;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ShowCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var json = Common.JsonOption();
        var command = new Command("show", "Show a task: prompt, status, summary, files changed, tokens, cost, durations") { id, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var report = await client.GetAsync<TaskReport>($"v1/tasks/{parse.GetValue(id)}", ct);
            if (parse.GetValue(json))
            {
                var node = JsonSerializer.SerializeToNode(report.Task, OffloadJson.Options)!.AsObject();
                node["files"] = JsonSerializer.SerializeToNode(report.Files, OffloadJson.Options);
                Output.Json(node); // the task's fields at the top level, as scripts expect, plus the files changed
                return ExitCodes.Ok;
            }

            Print(report);
            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    private static void Print(TaskReport report)
    {
        var t = report.Task;
        var w = Console.Out;
        w.WriteLine(Output.Paint($"task {t.Id} · {t.Title}", "1"));
        w.WriteLine($"status    {Output.Status(t.Status)}{(t.Error is null ? "" : " · " + t.Error)}");
        w.WriteLine($"model     {t.Model} ({t.Engine} engine)");
        w.WriteLine($"branch    {t.Branch} (from {t.BaseRef} @ {t.BaseCommit[..Math.Min(10, t.BaseCommit.Length)]})");
        w.WriteLine($"worktree  {t.Worktree}{(t.Discarded ? " (discarded)" : "")}");
        w.WriteLine($"usage     {t.Turns} turns · {Output.Tokens(t.Usage.InputTokens)} in / {Output.Tokens(t.Usage.OutputTokens)} out · {Output.Cost(t.Usage.CostUsd)}");
        var started = t.StartedAt ?? t.CreatedAt;
        var queued = started - t.CreatedAt;
        var ran = (t.FinishedAt ?? DateTimeOffset.UtcNow) - started;
        w.WriteLine($"time      queued {Output.Duration(queued)} · ran {Output.Duration(ran)}{(t.FinishedAt is null ? " so far" : "")} · created {t.CreatedAt.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        w.WriteLine();
        w.WriteLine(Output.Paint("prompt", "1"));
        w.WriteLine(Indent(t.Prompt));
        if (t.Summary is { Length: > 0 })
        {
            w.WriteLine();
            w.WriteLine(Output.Paint("summary", "1"));
            w.WriteLine(Indent(t.Summary));
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
    }

    private static string Indent(string text) => string.Join('\n', text.TrimEnd().Split('\n').Select(l => "  " + l));
}
