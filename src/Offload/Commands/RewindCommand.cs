using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class RewindCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var to = new Option<int>("--to") { Description = "The turn to go back to (see `offload checkpoints ID`)", Required = true };
        var json = Common.JsonOption();
        var command = new Command("rewind", "Put a finished task's worktree and conversation back to the end of a turn, ready for `reply`; the later journal stays on record")
        {
            id, to, json,
        };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var rewound = await client.PostAsync<RewindResponse>($"v1/tasks/{parse.GetValue(id)}/rewind", new RewindRequest(parse.GetValue(to)), ct);
            if (parse.GetValue(json))
            {
                Output.Json(rewound);
            }
            else
            {
                var t = rewound.Task;
                Console.Out.WriteLine($"task {t.Id} rewound to turn {rewound.Checkpoint.Turn} ({rewound.Checkpoint.Commit[..10]}): its worktree, branch and conversation are as they were then");
                Console.Out.WriteLine(Output.Paint($"  offload reply {t.Id} \"…\" goes on from there", "2"));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
