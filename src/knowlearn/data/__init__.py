"""Records (documents with fact spans, QA pairs), their JSONL form, and the data generators."""

from knowlearn.data.records import Document, Fact, QAPair, read_documents, read_qa, write_records

__all__ = ["Document", "Fact", "QAPair", "read_documents", "read_qa", "write_records"]
