using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ApplyCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var json = Common.JsonOption();
        var command = new Command("apply", "Put the task's changes into your working tree, uncommitted; refuses, changing nothing, on conflicts")
        {
            id, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var applied = await client.PostAsync<MergeResponse>($"v1/tasks/{parse.GetValue(id)}/apply", null, ct);
            if (parse.GetValue(json))
            {
                Output.Json(applied);
            }
            else if (applied.Files.Count == 0)
            {
                Console.Out.WriteLine($"task {applied.Id}: nothing to apply, your HEAD already has its changes");
            }
            else
            {
                Console.Out.WriteLine($"applied task {applied.Id} to your working tree, uncommitted · {MergeCommand.Files(applied.Files)}");
                Console.Out.WriteLine(Output.Paint("  review with `git diff` (new files are untracked), then commit", "2"));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
