using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class CheckpointsCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var json = Common.JsonOption();
        var command = new Command("checkpoints", "List the saved states of a task's worktree, one after each turn that changed files")
        {
            id, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var page = await client.GetAsync<Page<CheckpointInfo>>($"v1/tasks/{parse.GetValue(id)}/checkpoints", ct);
            if (parse.GetValue(json))
            {
                Output.Json(page.Items);
                return ExitCodes.Ok;
            }

            if (page.Items.Count == 0)
            {
                Console.Out.WriteLine($"task {parse.GetValue(id)} has no checkpoints (one is saved after each turn that changes files)");
                return ExitCodes.Ok;
            }

            Console.Out.WriteLine(Output.Paint($"{"TURN",4}  {"TIME",-19}  {"FILES",5}  COMMIT", "1"));
            foreach (var c in page.Items)
            {
                Console.Out.WriteLine($"{c.Turn,4}  {c.At.ToLocalTime():yyyy-MM-dd HH:mm:ss}  {c.FilesChanged,5}  {c.Commit[..10]}");
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
