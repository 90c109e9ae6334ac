using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class WaitCommand
{
    public static Command Create()
    {
        var ids = Common.TaskOrGroupIdsArgument("The tasks (12) or best-of-N groups (g3) to wait for");
        var until = new Option<string?>("--until")
        {
            Description = "needs_input: return 0 as soon as each task needs input (or has ended); done: wait through questions too, until each task ends " +
                          "(someone else answers them). Without it, wait returns when a task ends or stops to ask (exit 12)",
            HelpName = "needs_input|done",
        };
        until.AcceptOnlyFromAmong("needs_input", "done");
        var timeout = Common.TimeoutOption("Give up after this long, e.g. 90s, 20m, 2h: exit 13, the tasks go on");
        var json = Common.JsonOption();
        var command = new Command("wait",
            "Block until the tasks end; exit 0 only if all succeeded (8 failed, 9 limited, 10 cancelled, 12 a task needs input, 13 --timeout passed); " +
            "a group (gN) counts as succeeded when it has a pick. --json prints the tasks, or the groups (with their picks) when only groups are named")
        {
            ids, until, timeout, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var refs = parse.GetValue(ids)!;
            var mode = parse.GetValue(until);
            var query = mode == "done" ? "?until=done" : "?until=needs_input";
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (parse.GetValue(timeout) is { } seconds)
            {
                deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
            }

            Waited[] waited;
            var timedOut = false;
            try
            {
                waited = await WaitAllAsync(client, refs, query, deadline.Token);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                timedOut = true; // where each one is now
                waited = await WaitAllAsync(client, refs, null, ct);
            }

            var tasks = waited.SelectMany(w => w.Task is { } t ? [t] : w.Group!.Tasks).ToArray();
            if (parse.GetValue(json))
            {
                if (refs.All(r => r.IsGroup))
                {
                    Output.Json(waited.Select(w => w.Group).OfType<GroupInfo>().ToArray());
                }
                else
                {
                    Output.Json(tasks);
                }
            }
            else
            {
                foreach (var w in waited)
                {
                    if (w.Group is { } g)
                    {
                        Console.Out.WriteLine($"group g{g.Id}: " + (g.Pick is { } pick ? $"pick task {pick} ({g.PickReason})" : $"no pick: {g.PickReason}"));
                    }

                    foreach (var t in w.Task is { } one ? [one] : w.Group!.Tasks)
                    {
                        Console.Out.WriteLine($"{(w.Group is null ? "" : "  ")}task {t.Id} {Output.Status(t.Status)}{(t.Error is null ? "" : " · " + t.Error)}{Next(t)}");
                    }
                }
            }

            if (timedOut)
            {
                Console.Error.WriteLine($"offload: gave up waiting after {Output.Duration(TimeSpan.FromSeconds(parse.GetValue(timeout)!.Value))}; the tasks go on");
                return ExitCodes.WaitTimedOut;
            }

            return waited.Select(w => w.Group is { } g
                ? g.Tasks.All(t => t.Status.IsFinal())
                    ? g.Pick is null ? ExitCodes.TaskFailed : ExitCodes.Ok
                    : g.Tasks.Where(t => !t.Status.IsFinal()).Max(t => Code(t.Status, mode)) // one stopped to ask
                : Code(w.Task!.Status, mode)).Max();
        }, cancellationToken: ct));
        return command;
    }

    /// <summary>Every named task or group, waited for at once (<paramref name="query"/> null: as they are now).</summary>
    private static Task<Waited[]> WaitAllAsync(DaemonClient client, IReadOnlyList<TaskRef> refs, string? query, CancellationToken ct) =>
        Task.WhenAll(refs.Select(async r => r.IsGroup
            ? new Waited(null, await client.GetAsync<GroupInfo>(query is null ? $"v1/groups/{r.Id}" : $"v1/groups/{r.Id}/wait{query}", ct))
            : new Waited(query is null ? (await client.GetAsync<TaskReport>($"v1/tasks/{r.Id}", ct)).Task : await client.GetAsync<TaskInfo>($"v1/tasks/{r.Id}/wait{query}", ct), null)));

    private static int Code(OffloadTaskStatus status, string? mode) => status switch
    {
        OffloadTaskStatus.Succeeded => ExitCodes.Ok,
        OffloadTaskStatus.Cancelled => ExitCodes.TaskCancelled,
        OffloadTaskStatus.Limited => ExitCodes.TaskLimited,
        OffloadTaskStatus.NeedsInput => mode == "needs_input" ? ExitCodes.Ok : ExitCodes.NeedsInput,
        _ => ExitCodes.TaskFailed,
    };

    /// <summary>What to type for a task that waits on its user.</summary>
    private static string Next(TaskInfo t) => t.Status == OffloadTaskStatus.NeedsInput
        ? $" · it waits for you: `offload show {t.Id}` says on what, then `offload approve {t.Id}`, `offload deny {t.Id}` or `offload reply {t.Id} \"…\"`"
        : "";

    private sealed record Waited(TaskInfo? Task, GroupInfo? Group);
}
