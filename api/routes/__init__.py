"""One router per resource: health, entities, videos, recall, generate."""
