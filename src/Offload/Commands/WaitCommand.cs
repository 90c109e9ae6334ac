using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class WaitCommand
{
    public static Command Create()
    {
        var ids = Common.TaskOrGroupIdsArgument("The tasks (12) or best-of-N groups (g3) to wait for");
        var json = Common.JsonOption();
        var command = new Command("wait",
            "Block until the tasks end; exit 0 only if all succeeded (8 failed, 9 limited, 10 cancelled); a group (gN) counts as succeeded when it has a pick. " +
            "--json prints the tasks, or the groups (with their picks) when only groups are named")
        {
            ids, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var refs = parse.GetValue(ids)!;
            var waited = await Task.WhenAll(refs.Select(async r => r.IsGroup
                ? new Waited(null, await client.GetAsync<GroupInfo>($"v1/groups/{r.Id}/wait", ct))
                : new Waited(await client.GetAsync<TaskInfo>($"v1/tasks/{r.Id}/wait", ct), null)));
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
                        Console.Out.WriteLine($"{(w.Group is null ? "" : "  ")}task {t.Id} {Output.Status(t.Status)}{(t.Error is null ? "" : " · " + t.Error)}");
                    }
                }
            }

            return waited.Select(w => w.Group is { } g
                ? g.Pick is null ? ExitCodes.TaskFailed : ExitCodes.Ok
                : w.Task!.Status switch
                {
                    OffloadTaskStatus.Succeeded => ExitCodes.Ok,
                    OffloadTaskStatus.Cancelled => ExitCodes.TaskCancelled,
                    OffloadTaskStatus.Limited => ExitCodes.TaskLimited,
                    _ => ExitCodes.TaskFailed,
                }).Max();
        }, cancellationToken: ct));
        return command;
    }

    private sealed record Waited(TaskInfo? Task, GroupInfo? Group);
}
