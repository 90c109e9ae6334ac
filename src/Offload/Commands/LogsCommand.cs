using System.CommandLine;
using Offload.Protocol;

namespace Offload.Cli.Commands;

public static class LogsCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep following live events until the task ends" };
        var after = new Option<long>("--after") { Description = "Start after this event sequence number" };
        var thinking = new Option<bool>("--thinking") { Description = "Show the model's thinking whole (by default one line per thinking block: its start and size)" };
        var json = Common.JsonOption();
        var command = new Command("logs", "A task's journal: assistant text and thinking, tool calls, compact results, status changes") { id, follow, after, thinking, json };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var asJson = parse.GetValue(json);
            var subagents = new Output.SubagentLabels();
            await foreach (var e in client.EventsAsync(parse.GetValue(id), parse.GetValue(after), parse.GetValue(follow), ct))
            {
                if (asJson)
                {
                    Output.JsonLine(e);
                }
                else if (Output.LogLine(e, parse.GetValue(thinking), subagents.Of(e)) is { } line)
                {
                    Console.Out.WriteLine(line);
                }
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
