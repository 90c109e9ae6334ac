using System.Collections;
using System.Text.Json;
using Offload.Config;
using Offload.Models;
using Offload.Protocol;
using Offload.Redaction;
using Offload.Tests.EndToEnd;
using static Offload.Tests.EndToEnd.Turns;

namespace Offload.Tests.Permissions;

/// <summary>Secrets Offload knows never reach the journal, the logs, or (through the journal) the model.</summary>
public sealed class RedactionTests
{
    private const string Key = "sk-test-0123456789abcdefXYZ";

    [Fact]
    public async Task KeyPrintedByBash_IsRedactedInTheJournalTheLogsTheDatabaseAndWhatTheModelSees()
    {
        await using var h = new OffloadHarness();
        h.Env["OFFLOAD_TEST_API_KEY"] = Key;
        var model = h.Scenario("leak", new
        {
            name = "leak",
            turns = new[]
            {
                Tool("Bash", new { command = "printf '%s%s\\n' sk-test-0123456789 abcdefXYZ" }), // the key, without writing it in the call
                Tool("Bash", new { command = "printf '%s%s\\n' sk-test-0123456789 abcdefXYZ; seq 1 30000" }), // cut: the full output is spilled to a file
                Final("The model saw the key in clear."),
            },
            rules = new[] { new { whenContains = "[redacted OFFLOAD_TEST_API_KEY]", afterTurn = 2, turn = new { text = "The model saw only the placeholder." } } },
        });

        var task = await h.RunTaskAsync(model, "print the key");
        var done = await h.WaitAsync(task.Id);

        Assert.Equal(OffloadTaskStatus.Succeeded, done.Status);
        Assert.Equal("The model saw only the placeholder.", done.Summary);
        var results = (await h.EventsAsync(task.Id)).OfType<ToolResulted>().ToList();
        Assert.Equal("[redacted OFFLOAD_TEST_API_KEY]", results[0].Output);
        Assert.True(results[1].Truncated);
        Assert.StartsWith("[redacted OFFLOAD_TEST_API_KEY]\n1\n2\n", File.ReadAllText(results[1].FullOutputPath!), StringComparison.Ordinal);
        var logs = await h.OffloadAsync("logs", "--json", task.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.DoesNotContain(Key, logs.Stdout, StringComparison.Ordinal);
        Assert.Contains("[redacted OFFLOAD_TEST_API_KEY]", logs.Stdout, StringComparison.Ordinal);

        await h.OffloadAsync("daemon", "stop");
        foreach (var file in Directory.EnumerateFiles(h.OffloadHome, "*", SearchOption.AllDirectories).Where(f => !f.Contains("/worktrees/", StringComparison.Ordinal)))
        {
            Assert.False(File.ReadAllText(file).Contains(Key, StringComparison.Ordinal), $"{file} holds the key");
        }
    }

    [Fact]
    public void Redactor_KnowsKeysAndTokensFromTheEnvironmentAndTheConfig_AndLeavesShortOrHarmlessValues()
    {
        var environment = new Hashtable
        {
            ["ANTHROPIC_API_KEY"] = "sk-ant-aaaaaaaaaaaa",
            ["GITHUB_TOKEN"] = "ghp_bbbbbbbbbbbb",
            ["DB_PASSWORD"] = "hunter2hunter2",
            ["MY_GATEWAY_VAR"] = "gw-cccccccccccc",
            ["SHORT_TOKEN"] = "abc",
            ["HOME"] = "/home/someone",
        };
        var config = new OffloadConfig
        {
            Models = new ModelSettings
            {
                Providers = new() { ["gateway"] = new ProviderSettings { ApiKey = "cfg-dddddddddddd", ApiKeyEnv = "MY_GATEWAY_VAR" } },
            },
        };

        var redactor = SecretRedactor.From(environment, config);

        Assert.Equal(
            "[redacted ANTHROPIC_API_KEY] [redacted GITHUB_TOKEN] [redacted DB_PASSWORD] [redacted MY_GATEWAY_VAR] [redacted models.providers.gateway.apiKey] abc /home/someone",
            redactor.Redact("sk-ant-aaaaaaaaaaaa ghp_bbbbbbbbbbbb hunter2hunter2 gw-cccccccccccc cfg-dddddddddddd abc /home/someone"));
    }

    [Fact]
    public void Redactor_FindsTheKeyAnywhereInAnEvent_EvenWhereJsonEscapesIt()
    {
        var redactor = new SecretRedactor([("WEIRD_TOKEN", "quote\"and\\slash")]);
        var call = new ToolCalled(1, "c1", "Bash", JsonSerializer.SerializeToElement(new { command = "echo 'quote\"and\\slash'" }));

        var redacted = (ToolCalled)redactor.Redact(call);

        Assert.Equal("echo '[redacted WEIRD_TOKEN]'", redacted.Input.GetProperty("command").GetString());
        Assert.Same(call, new SecretRedactor([("OTHER_TOKEN", "not-in-there")]).Redact(call));
    }

    [Fact]
    public void Redactor_NeverChangesTheShapeOfAnEvent_EvenWhenASecretEqualsAPropertyName()
    {
        var result = new ToolResulted("call-12345678", "Bash", "exit code: exitCode truncated", IsError: false, ExitCode: 0);

        var redacted = (ToolResulted)new SecretRedactor([("ODD_KEY", "exitCode"), ("CALL_TOKEN", "call-12345678")]).Redact(result);

        Assert.Equal(result with { CallId = "[redacted CALL_TOKEN]", Output = "exit code: [redacted ODD_KEY] truncated" }, redacted);
    }
}
