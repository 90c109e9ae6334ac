using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class ApproveCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var always = new Option<bool>("--always") { Description = "Also allow this exact call for the rest of the task (kept across restarts)" };
        var json = Common.JsonOption();
        var command = new Command("approve", "Let a task waiting for permission (needs_input) run the tool call it asked about") { id, always, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var answer = await client.PostAsync<PermissionAnswerResponse>($"v1/tasks/{parse.GetValue(id)}/approve", new ApproveRequest(parse.GetValue(always)), ct);
            if (parse.GetValue(json))
            {
                Output.Json(answer);
            }
            else
            {
                Console.Out.WriteLine($"task {answer.TaskId}: approved {answer.Tool} {Output.OneLine(ApproveCommand.Describe(answer.Input), 120)}"
                    + (answer.Rule is null ? "" : $"; {answer.Rule} is allowed for the rest of the task"));
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }

    /// <summary>The part of a tool call a person recognises: the command or the file, else the raw input.</summary>
    internal static string Describe(System.Text.Json.JsonElement input)
    {
        foreach (var key in new[] { "command", "file_path", "path", "pattern", "url" })
        {
            if (input.ValueKind == System.Text.Json.JsonValueKind.Object && input.TryGetProperty(key, out var value) && value.ValueKind == System.Text.Json.JsonValueKind.String)
            {
                return value.GetString()!;
            }
        }

        return input.GetRawText();
    }
}
