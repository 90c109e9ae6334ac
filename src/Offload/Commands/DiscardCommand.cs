using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class DiscardCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask (needed when not on a terminal)" };
        var force = new Option<bool>("--force") { Description = "Cancel the task first if it is still queued or running" };
        var json = Common.JsonOption();
        var command = new Command("discard", "Throw a task's work away: remove its worktree and its branch (`ls --all` still lists it)")
        {
            id, yes, force, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var taskId = parse.GetValue(id);
            if (!parse.GetValue(yes))
            {
                if (Console.IsInputRedirected)
                {
                    throw new CliException(ExitCodes.BadInput,
                        $"discarding task {taskId} deletes its worktree and branch, and there is no terminal to ask for a yes",
                        $"offload discard {taskId} --yes");
                }

                var report = await client.GetAsync<TaskReport>($"v1/tasks/{taskId}", ct);
                var t = report.Task;
                Console.Error.Write($"Discard task {t.Id} ({t.Status.ToWire()}) \"{Output.OneLine(t.Title, 60)}\"? "
                    + $"Its worktree and branch {t.Branch} ({report.Files.Count} file{(report.Files.Count == 1 ? "" : "s")} changed) will be deleted. [y/N] ");
                if (Console.In.ReadLine()?.Trim().ToLowerInvariant() is not ("y" or "yes"))
                {
                    Console.Error.WriteLine("nothing was discarded");
                    return ExitCodes.Error;
                }
            }

            var discarded = await client.PostAsync<DiscardResponse>($"v1/tasks/{taskId}/discard", new DiscardRequest(parse.GetValue(force)), ct);
            if (parse.GetValue(json))
            {
                Output.Json(discarded);
            }
            else
            {
                Console.Out.WriteLine($"discarded task {discarded.Id}{(discarded.CancelledFirst ? " (cancelled first)" : "")} · freed {GcCommand.Bytes(discarded.BytesFreed)}");
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
