using System.CommandLine;

namespace Offload.Cli.Commands;

public static class DiffCommand
{
    public static Command Create()
    {
        var id = Common.TaskIdArgument();
        var command = new Command("diff", "The task branch's changes against its base") { id };
        command.SetAction(async (parse, ct) => await Common.WithClientAsync(async client =>
        {
            var diff = await client.GetTextAsync($"v1/tasks/{parse.GetValue(id)}/diff", ct);
            if (Output.Color)
            {
                foreach (var line in diff.Split('\n'))
                {
                    Console.Out.WriteLine(line.StartsWith("+++", StringComparison.Ordinal) || line.StartsWith("---", StringComparison.Ordinal) ? Output.Paint(line, "1")
                        : line.StartsWith('+') ? Output.Paint(line, "32")
                        : line.StartsWith('-') ? Output.Paint(line, "31")
                        : line.StartsWith("@@", StringComparison.Ordinal) ? Output.Paint(line, "36")
                        : line);
                }
            }
            else
            {
                Console.Out.Write(diff);
            }

            return ExitCodes.Ok;
        }, cancellationToken: ct));
        return command;
    }
}
