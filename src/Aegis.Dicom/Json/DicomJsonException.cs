namespace Aegis.Dicom.Json;

/// <summary>DICOM JSON (PS3.18 F.2) input that cannot be turned into a data set; <see cref="JsonPath"/> says where.</summary>
public sealed class DicomJsonException : DicomFormatException
{
    public DicomJsonException(string message, string jsonPath, DicomTag? tag = null, Exception? inner = null)
        : base($"{message} at {jsonPath}", -1, tag, inner)
    {
        JsonPath = jsonPath;
    }

    /// <summary>Where in the document the problem is, e.g. <c>$[0]['00081115'].Value[0]['00081150']</c>.</summary>
    public string JsonPath { get; }
}
