using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class DenyCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var reason = new Option<string?>("--reason") { Description = "Why, for the agent: it gets this as the tool's error and carries on" };
        var json = Common.JsonOption();
        var command = new Command("deny", "Refuse the tool call a task waiting for permission (needs_input) asked about; the task goes on without it") { id, reason, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var answer = await client.PostAsync<PermissionAnswerResponse>($"v1/tasks/{parse.GetValue(id)}/deny", new DenyRequest(parse.GetValue(reason)), ct);
            if (parse.GetValue(json))
            {
                Output.Json(answer);
            }
            else
            {
                Console.Out.WriteLine($"task {answer.TaskId}: denied {answer.Tool} {Output.OneLine(ApproveCommand.Describe(answer.Input), 120)}"
                    + (answer.Reason is null ? "" : $" ({answer.Reason})"));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
