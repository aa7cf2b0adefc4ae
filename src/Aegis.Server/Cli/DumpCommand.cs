using System.CommandLine;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Server.Cli;

/// <summary>`aegis dump FILE`: every element, nested items indented, in dcmdump's style.</summary>
internal static class DumpCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo[]>("file") { Description = "DICOM file(s) to list", Arity = ArgumentArity.OneOrMore };
        var lenient = new Option<bool>("--lenient") { Description = "Read past defects (missing delimiters, truncation) and report them as warnings" };
        var cmd = new Command("dump", "List every data element of DICOM files") { file, lenient };
        cmd.SetAction(parse =>
        {
            int rc = 0;
            var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = false };
            foreach (var f in parse.GetValue(file)!)
            {
                try
                {
                    var dicom = DicomReader.ReadFile(f.FullName, new DicomReaderOptions { Lenient = parse.GetValue(lenient) });
                    foreach (var w in dicom.Warnings) Console.Error.WriteLine($"aegis dump: {f.Name}: warning: {w}");
                    DicomDumper.Dump(dicom, stdout);
                    stdout.Flush();
                }
                catch (Exception ex) when (ex is DicomFormatException or IOException or UnauthorizedAccessException)
                {
                    stdout.Flush();
                    Console.Error.WriteLine($"aegis dump: {f.FullName}: {ex.Message}");
                    rc = 1;
                }
            }
            stdout.Flush();
            return rc;
        });
        return cmd;
    }
}
