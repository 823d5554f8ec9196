"""Face attributes from one face crop each: age, gender, emotion, mask."""
