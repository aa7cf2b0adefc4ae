namespace Aegis.Dicom.Xml;

/// <summary>Native DICOM Model XML (PS3.19 A.1) input that is refused or malformed; says the line and position.</summary>
public sealed class DicomXmlException : DicomFormatException
{
    public DicomXmlException(string message, int lineNumber, int linePosition, DicomTag? tag = null, Exception? inner = null)
        : base(lineNumber > 0 ? $"{message} (line {lineNumber}, position {linePosition})" : message, -1, tag, inner)
    {
        LineNumber = lineNumber;
        LinePosition = linePosition;
    }

    public int LineNumber { get; }
    public int LinePosition { get; }
}
