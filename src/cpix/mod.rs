//! CPIX document model, reader and writer.
